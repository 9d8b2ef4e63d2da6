package e2e

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/camd-project/camd/device/pairing"
)

var payloadRE = regexp.MustCompile(`CAMD1:[A-Z0-9$%*+\-./:]+`)

// TestLogRingHoldsNoSecret runs camd at debug level through what handles
// secrets: pairing the owner from the setup code, inviting and pairing a
// viewer, an invitation cancelled, a request with a wrong credential,
// settings changed. Then it greps every file of the log ring for every
// secret the run handled, as text and as hex and base64: none is there.
func TestLogRingHoldsNoSecret(t *testing.T) {
	data := t.TempDir()
	conf := filepath.Join(t.TempDir(), "camd.yaml")
	os.WriteFile(conf, []byte("video:\n  width: 320\n  height: 240\n  fps: 10\n"), 0o600)
	d := startAt(t, data, "unpaired", "--config", conf)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var secrets []string
	keep := func(payload string) {
		p, err := pairing.Parse(payload)
		if err != nil {
			t.Fatalf("%q: %v", payload, err)
		}
		secrets = append(secrets, payload, strings.TrimPrefix(payload, "CAMD1:"), hex.EncodeToString(p.Secret[:]),
			base64.StdEncoding.EncodeToString(p.Secret[:]), base64.RawURLEncoding.EncodeToString(p.Secret[:]))
	}

	// The owner pairs from the setup code.
	out, err := exec.Command(filepath.Join(bin, "camd"), "qr", "--data", data).CombinedOutput()
	if err != nil {
		t.Fatalf("camd qr: %v\n%s", err, out)
	}
	setup := payloadRE.FindString(string(out))
	keep(setup)
	d.store = filepath.Join(t.TempDir(), "owner.json")
	if _, err := camctl(t, ctx, "pair", "--store", d.store, "--name", "owner", setup); err != nil {
		t.Fatal(err)
	}
	secrets = append(secrets, d.token(t))

	// A viewer is invited and pairs; another invitation is cancelled.
	invite := func() string {
		out, err := camctl(t, ctx, "users", "invite", "--store", d.store)
		if err != nil {
			t.Fatal(err)
		}
		p := payloadRE.FindString(out)
		keep(p)
		return p
	}
	viewerStore := filepath.Join(t.TempDir(), "viewer.json")
	if _, err := camctl(t, ctx, "pair", "--store", viewerStore, "--name", "viewer", invite()); err != nil {
		t.Fatal(err)
	}
	viewer := &daemon{store: viewerStore}
	secrets = append(secrets, viewer.token(t))
	invite()
	out2, err := camctl(t, ctx, "users", "invitations", "--json", "--store", d.store)
	if err != nil {
		t.Fatal(err)
	}
	var invs []pairing.Invitation
	if err := json.Unmarshal([]byte(out2), &invs); err != nil || len(invs) != 1 {
		t.Fatalf("invitations: %v %s", err, out2)
	}
	if _, err := camctl(t, ctx, "users", "cancel", "--store", d.store, invs[0].ID); err != nil {
		t.Fatal(err)
	}

	// A wrong credential (it looks like one of this camera's).
	wrong := "camd1.AAAAAAAAAAAAAAAA.wrong-secret-credential-0123456789"
	secrets = append(secrets, wrong)
	req, _ := http.NewRequest("GET", "https://"+d.addr+"/api/v1/settings", nil)
	req.Header.Set("Authorization", "Bearer "+wrong)
	if resp, err := insecureClient().Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong credential: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	// Settings change.
	if _, err := camctl(t, ctx, "settings", "set", "--store", d.store, "mute=on", "name=Porch"); err != nil {
		t.Fatal(err)
	}
	// The owner reads the log through camctl.
	logs, err := camctl(t, ctx, "logs", "--store", d.store, "--level", "debug", "--limit", "5000")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"pairing: paired", "settings changed", "invitation cancelled", "credential refused"} {
		if !strings.Contains(logs, want) {
			t.Errorf("camctl logs lacks %q", want)
		}
	}
	d.stop()

	var ring strings.Builder
	files, _ := filepath.Glob(filepath.Join(data, "logs", "*"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		ring.Write(b)
	}
	if !strings.Contains(ring.String(), "pairing: paired") || !strings.Contains(ring.String(), "camd: stopped") && !strings.Contains(ring.String(), "camd: shutting down") {
		t.Fatalf("the ring (%d files) lacks the run's lines:\n%s", len(files), ring.String())
	}
	for _, s := range append(secrets, logs) {
		if s == logs {
			continue
		}
		if strings.Contains(ring.String(), s) || strings.Contains(strings.ToLower(ring.String()), strings.ToLower(s)) {
			t.Errorf("a secret is in the log ring: %q", s)
		}
		if strings.Contains(logs, s) {
			t.Errorf("a secret is in camctl logs: %q", s)
		}
	}
	t.Logf("searched %d bytes of the ring for %d secrets", ring.Len(), len(secrets))
}
