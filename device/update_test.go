package device

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"aead.dev/minisign"

	"github.com/camd-project/camd/device/api"
	"github.com/camd-project/camd/internal/testenv"
	"github.com/camd-project/camd/media"
	"github.com/camd-project/camd/storage/eventlog"
	"github.com/camd-project/camd/update"
	"github.com/camd-project/camd/update/updatetest"
)

// updating runs a daemon whose update feed is feed (trusted through
// update.ca_file) and whose A/B hooks are ab's.
func updating(t *testing.T, feed *updatetest.Feed, ab *updatetest.FakeAB) *Daemon {
	ca := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: feed.Server.Certificate().Raw}), 0o644)
	return running(t, func(c *Config) {
		c.Update = UpdateConfig{
			FeedURL: feed.URL(), CAFile: ca, Product: "camd", ConfirmTimeout: time.Minute,
			InstallCommand: ab.Command("install"), MarkGoodCommand: ab.Command("mark-good"),
			RollbackCommand: ab.Command("rollback"), RebootCommand: ab.Command("reboot"),
			keys: []minisign.PublicKey{feed.Key},
		}
	})
}

func updateStatus(t *testing.T, d *Daemon, token string) update.Status {
	t.Helper()
	code, b := call(t, d, "GET", "/api/v1/update", token, nil)
	var st update.Status
	if err := json.Unmarshal(b, &st); code != 200 || err != nil {
		t.Fatalf("update status: %d %s", code, b)
	}
	return st
}

func updateEvents(t *testing.T, d *Daemon, token, kind string) []eventlog.Event {
	t.Helper()
	code, b := call(t, d, "GET", "/api/v1/events?kind="+kind, token, nil)
	var list []eventlog.Event
	if err := json.Unmarshal(b, &list); code != 200 || err != nil {
		t.Fatalf("events: %d %s", code, b)
	}
	return list
}

// Updates over HTTPS: only the owner reaches them; nothing is contacted
// until the owner turns update_check on; then an update is an event and
// shows with its notes and size; a refused feed is an event; the owner's
// approval downloads, installs into the other slot and reboots.
func TestUpdateOverHTTPS(t *testing.T) {
	feed := updatetest.NewFeed(t)
	ab := updatetest.NewFakeAB(t, "1.0.0")
	img := updatetest.Image("1.1.0", 200_000)
	feed.Publish(updatetest.Manifest("1.1.0", 1, img), img)
	d := updating(t, feed, ab)
	ownerToken := owner(t, d)
	viewerToken := viewer(t, d, ownerToken)

	// A revoked viewer, a viewer and no credential: refused everywhere.
	revokedToken := viewer(t, d, ownerToken)
	code, b := call(t, d, "GET", "/api/v1/users", ownerToken, nil)
	var users []struct{ ID, Name string }
	json.Unmarshal(b, &users)
	if code != 200 || len(users) != 3 {
		t.Fatalf("users: %d %s", code, b)
	}
	if code, _ := call(t, d, "DELETE", "/api/v1/users/"+users[2].ID, ownerToken, nil); code != http.StatusNoContent {
		t.Fatalf("revoke: %d", code)
	}
	routes := []struct {
		method, path string
		body         any
	}{
		{"GET", "/api/v1/update", nil},
		{"POST", "/api/v1/update/check", struct{}{}},
		{"POST", "/api/v1/update/apply", api.ApplyRequest{Version: "1.1.0"}},
	}
	for _, r := range routes {
		for who, want := range map[string]struct {
			token string
			code  int
		}{"no credential": {"", 401}, "revoked": {revokedToken, 401}, "viewer": {viewerToken, 403}} {
			if code, b := call(t, d, r.method, r.path, want.token, r.body); code != want.code {
				t.Errorf("%s %s as %s: %d %s, want %d", r.method, r.path, who, code, b, want.code)
			}
		}
	}

	// Off: the owner's check is refused and nothing reaches the server.
	if st := updateStatus(t, d, ownerToken); st.Enabled || st.Available != nil || st.Version != Version {
		t.Fatalf("status while off: %+v", st)
	}
	if code, b := call(t, d, "POST", "/api/v1/update/check", ownerToken, struct{}{}); code != http.StatusConflict || !strings.Contains(string(b), "update_check") {
		t.Fatalf("check while off: %d %s", code, b)
	}
	if reqs := feed.Requests(); len(reqs) != 0 {
		t.Fatalf("the update server was contacted while checking was off: %v", reqs)
	}

	// On: a check finds 1.1.0.
	if code, b := patchSettings(t, d, ownerToken, "application/json", `{"update_check": true}`); code != 200 || b["update_check"] != true {
		t.Fatalf("turning checking on: %d %v", code, b)
	}
	if st := updateStatus(t, d, ownerToken); !st.Enabled || st.NextCheck.IsZero() {
		t.Fatalf("status once on: %+v", st)
	}
	code, b = call(t, d, "POST", "/api/v1/update/check", ownerToken, struct{}{})
	var st update.Status
	json.Unmarshal(b, &st)
	if code != 200 || st.Available == nil || st.Available.Version != "1.1.0" || st.Available.Size != 200_000 || st.Available.Notes == "" {
		t.Fatalf("check: %d %s", code, b)
	}
	if evs := updateEvents(t, d, ownerToken, update.EventAvailable); len(evs) != 1 || evs[0].Data["version"] != "1.1.0" {
		t.Fatalf("available events: %+v", evs)
	}
	// Updates are the owner's business: a viewer's event list has none.
	if evs := updateEvents(t, d, viewerToken, update.EventAvailable); len(evs) != 0 {
		t.Fatalf("a viewer sees update events: %+v", evs)
	}

	// A replayed (older) feed is refused, with an event.
	old := updatetest.Manifest("1.0.5", 0, img)
	feed.PublishRaw(feed.Signed(old))
	code, b = call(t, d, "POST", "/api/v1/update/check", ownerToken, struct{}{})
	var refused api.RefusedAnswer
	json.Unmarshal(b, &refused)
	if code != http.StatusBadGateway || refused.Reason != "replayed" {
		t.Fatalf("replayed feed: %d %s", code, b)
	}
	if evs := updateEvents(t, d, ownerToken, update.EventRefused); len(evs) != 1 || evs[0].Data["reason"] != "replayed" {
		t.Fatalf("refused events: %+v", evs)
	}

	// The owner approves 1.1.0: downloaded, installed in slot b, rebooted.
	feed.Publish(updatetest.Manifest("1.1.0", 1, img), img)
	if code, b := call(t, d, "POST", "/api/v1/update/apply", ownerToken, api.ApplyRequest{Version: "1.2.0"}); code != http.StatusConflict {
		t.Fatalf("apply of a version not offered: %d %s", code, b)
	}
	if code, b := call(t, d, "POST", "/api/v1/update/apply", ownerToken, api.ApplyRequest{Version: "1.1.0"}); code != http.StatusAccepted {
		t.Fatalf("apply: %d %s", code, b)
	}
	testenv.Eventually(t, "the reboot into 1.1.0", func() bool { return ab.Reboots() == 1 })
	if ab.Version() != "1.1.0" || ab.Primary() != "a" {
		t.Fatalf("booted %s, primary %s", ab.Version(), ab.Primary())
	}
	if evs := updateEvents(t, d, ownerToken, update.EventRebooting); len(evs) != 1 {
		t.Fatalf("rebooting events: %+v", evs)
	}
	if st := updateStatus(t, d, ownerToken); st.Pending == nil || st.Pending.Version != "1.1.0" {
		t.Fatalf("status after the install: %+v", st)
	}
}

// The health check of a new version: frames published since the last
// check, and the API answering on the device's certificate.
func TestUpdateHealthCheck(t *testing.T) {
	d := running(t) // a FIFO nobody writes: no frames
	h := newHealthCheck(d.hub, d.Addr(), d.id.TLS)
	ctx := context.Background()
	if err := h.check(ctx); !errors.Is(err, errNoFrames) {
		t.Fatalf("no frames: %v", err)
	}
	d.hub.Publish(&media.Frame{Kind: media.Audio, Data: []byte{0xf8}, Captured: time.Now()})
	if err := h.check(ctx); err != nil {
		t.Fatalf("frames and the API: %v", err)
	}
	if err := h.check(ctx); !errors.Is(err, errNoFrames) {
		t.Fatalf("no frames since: %v", err)
	}
	// Another device's certificate at that address is not this device.
	other := running(t)
	h = newHealthCheck(d.hub, other.Addr(), d.id.TLS)
	d.hub.Publish(&media.Frame{Kind: media.Audio, Data: []byte{0xf8}, Captured: time.Now()})
	if err := h.check(ctx); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("another device: %v", err)
	}
}

// update.ca_file that cannot be read, or holds no certificate, stops camd
// at start with the field.
func TestUpdateCAFileMustLoad(t *testing.T) {
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(notPEM, []byte("not a certificate"), 0o644)
	for _, path := range []string{filepath.Join(t.TempDir(), "missing.pem"), notPEM} {
		cfg := testConfig(t)
		cfg.Update.FeedURL, cfg.Update.CAFile = "https://updates.example.com/feed.json", path
		d, err := New(cfg, slog.New(slog.DiscardHandler))
		if err == nil {
			d.Close()
			t.Fatalf("%s: started", path)
		}
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "update.ca_file") {
			t.Fatalf("%s: %v", path, err)
		}
	}
}
