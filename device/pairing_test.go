package device

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/camd-project/camd/device/api"
	"github.com/camd-project/camd/device/pairing"
)

// running starts a daemon on loopback for the test, with tweaks applied
// to its configuration.
func running(t testing.TB, tweaks ...func(*Config)) *Daemon {
	t.Helper()
	cfg := Defaults()
	cfg.Data = t.TempDir()
	cfg.Listen = "127.0.0.1:0"
	// A FIFO nobody writes: no encoder runs (and prints) in these tests.
	cfg.Source = "passthrough"
	cfg.Passthrough.FIFO = filepath.Join(cfg.Data, "no-writer.fifo")
	for _, tweak := range tweaks {
		tweak(&cfg)
	}
	d, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	stop := sync.OnceFunc(func() { cancel(); <-done })
	stops.Store(d, stop)
	t.Cleanup(stop)
	return d
}

// stops holds, for each daemon running started, the function that stops
// it (stopDaemon).
var stops sync.Map

// stopDaemon stops a daemon that running started, before the test ends:
// the camera goes away.
func stopDaemon(d *Daemon) {
	stop, _ := stops.Load(d)
	stop.(func())()
}

// testClient makes a new connection for each request and closes it
// after, so that the tests' many calls stay under the daemon's
// connections per address.
func testClient() *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true}, Timeout: 10 * time.Second}
}

// callFor makes a JSON request as call does and decodes the answer,
// failing the test unless camd answered with want.
func callFor[T any](t testing.TB, d *Daemon, method, path, token string, body any, want int) T {
	t.Helper()
	var v T
	if code, b := call(t, d, method, path, token, body); code != want || json.Unmarshal(b, &v) != nil {
		t.Fatalf("%s %s: %d %s, want %d", method, path, code, b, want)
	}
	return v
}

// call makes a JSON request with an optional credential.
func call(t testing.TB, d *Daemon, method, path, token string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, "https://"+d.Addr().String()+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := testClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// pairWith runs the pairing exchange over HTTPS with a secret.
func pairWith(t testing.TB, d *Daemon, secret []byte, name, invite string) (int, api.Paired) {
	t.Helper()
	code, b := call(t, d, "POST", "/api/v1/pair/start", "", api.PairStart{InviteID: invite})
	if code != http.StatusOK {
		return code, api.Paired{}
	}
	var st api.PairStarted
	json.Unmarshal(b, &st)
	code, b = call(t, d, "POST", "/api/v1/pair/finish", "", api.PairFinish{
		Nonce: st.Nonce, Name: name, InviteID: invite, Proof: pairing.Proof(secret, st.DeviceID, st.Nonce, name),
	})
	var p api.Paired
	json.Unmarshal(b, &p)
	return code, p
}

// owner pairs the first user and returns its credential.
func owner(t testing.TB, d *Daemon) string {
	t.Helper()
	p := d.pairing.SetupPayload(d.hostHintFor())
	code, paired := pairWith(t, d, p.Secret[:], "owner", "")
	if code != http.StatusCreated || paired.Role != pairing.Owner {
		t.Fatalf("owner pairing: %d %+v", code, paired)
	}
	return paired.Token
}

// streamKey makes a stream key for name.
func streamKey(t testing.TB, d *Daemon, ownerToken, name string) pairing.KeyCredential {
	t.Helper()
	code, b := call(t, d, "POST", "/api/v1/keys", ownerToken, api.KeyRequest{For: name})
	var k pairing.KeyCredential
	if code != http.StatusCreated || json.Unmarshal(b, &k) != nil || k.Secret == "" {
		t.Fatalf("stream key: %d %s", code, b)
	}
	return k
}

// callBasic makes a request with HTTP Basic credentials and returns the
// status.
func callBasic(t testing.TB, d *Daemon, method, path, user, password string) int {
	t.Helper()
	req, _ := http.NewRequest(method, "https://"+d.Addr().String()+path, nil)
	req.SetBasicAuth(user, password)
	resp, err := testClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// viewer pairs a viewer through an invitation.
func viewer(t testing.TB, d *Daemon, ownerToken string) string {
	t.Helper()
	code, b := call(t, d, "POST", "/api/v1/users/invite", ownerToken, api.InviteRequest{Role: pairing.Viewer})
	if code != http.StatusOK {
		t.Fatalf("invite: %d %s", code, b)
	}
	var inv struct {
		Payload  string `json:"payload"`
		InviteID string `json:"invite_id"`
	}
	json.Unmarshal(b, &inv)
	p, err := pairing.Parse(inv.Payload)
	if err != nil || p.Kind != pairing.Invite {
		t.Fatalf("invite payload: %v", err)
	}
	code, paired := pairWith(t, d, p.Secret[:], "viewer", inv.InviteID)
	if code != http.StatusCreated || paired.Role != pairing.Viewer {
		t.Fatalf("viewer pairing: %d %+v", code, paired)
	}
	return paired.Token
}

var pathParam = regexp.MustCompile(`\{[^}]*\}`)

// TestEveryRouteNeedsACredential enumerates the routes table, so a route
// added later is covered without anyone remembering to add a test.
func TestEveryRouteNeedsACredential(t *testing.T) {
	d := running(t)
	ownerToken := owner(t, d)
	viewerToken := viewer(t, d, ownerToken)
	key := streamKey(t, d, ownerToken, "nvr")
	public := map[string]bool{
		"GET /health": true, "GET /{$}": true, "GET /app.js": true, "GET /app.css": true, "GET /recordings.js": true, "GET /call.js": true,
		"GET /shell.js": true, "GET /events.js": true, "GET /settings.js": true, "GET /users.js": true,
		"GET /keys.js": true, "GET /snapshots.js": true, "GET /device.js": true, "GET /pairing.js": true,
		"GET /sw.js": true, "GET /manifest.json": true, "GET /icon-192.png": true, "GET /icon-512.png": true, // the app's (docs/app.md)
		"GET /live.js": true, "GET /text.js": true,
		"POST /api/v1/pair/start": true, "POST /api/v1/pair/finish": true,
		"OPTIONS /api/v1/whep":                  true, // WHEP clients ask before their offer; ICE servers only with a credential
		"OPTIONS /api/v1/cameras/{camera}/whep": true,
	}
	seen := 0
	for _, r := range d.api.Routes() {
		method, pattern, _ := strings.Cut(r.Pattern, " ")
		path := strings.ReplaceAll(pathParam.ReplaceAllString(pattern, "x"), "/x$", "/")
		if strings.HasSuffix(pattern, "{$}") {
			path = strings.TrimSuffix(pattern, "{$}")
		}
		if r.Role == api.Public {
			if !public[r.Pattern] {
				t.Errorf("%s is public but not on the list of routes allowed to be", r.Pattern)
			}
			continue
		}
		seen++
		for name, tok := range map[string]string{"no credential": "", "garbage": "nonsense", "another device": "camd1.BBBBBBBBBBBBBBBB.xyz"} {
			if code, _ := call(t, d, method, path, tok, nil); code != http.StatusUnauthorized {
				t.Errorf("%s with %s: %d, want 401", r.Pattern, name, code)
			}
		}
		if r.Role == api.Owner {
			if code, _ := call(t, d, method, path, viewerToken, nil); code != http.StatusForbidden {
				t.Errorf("%s as a viewer: %d, want 403", r.Pattern, code)
			}
		}
		// A stream key opens live view and nothing else: as a bearer
		// token 403 elsewhere; as Basic, only live view takes it.
		code, _ := call(t, d, method, path, key.Token, nil)
		if r.Role != api.Stream && code != http.StatusForbidden {
			t.Errorf("%s with a stream key: %d, want 403", r.Pattern, code)
		}
		if r.Role == api.Stream && (code == http.StatusForbidden || code == http.StatusUnauthorized) {
			t.Errorf("%s (live view) with a stream key: %d", r.Pattern, code)
		}
		if code := callBasic(t, d, method, path, key.ID, key.Secret); r.Role != api.Stream && code != http.StatusUnauthorized {
			t.Errorf("%s with a stream key as Basic: %d, want 401", r.Pattern, code)
		}
	}
	if seen < 8 {
		t.Fatalf("only %d guarded routes: the table looks wrong", seen)
	}
}

func TestPairingOverHTTPS(t *testing.T) {
	d := running(t)
	secret := d.pairing.SetupPayload(d.hostHintFor()).Secret
	// Wrong secret: refused, counted, and this address must wait.
	if code, _ := pairWith(t, d, make([]byte, 16), "mallory", ""); code != http.StatusUnauthorized {
		t.Fatalf("wrong secret: %d", code)
	}
	if code, _ := call(t, d, "POST", "/api/v1/pair/start", "", api.PairStart{}); code != http.StatusTooManyRequests {
		t.Fatalf("start right after a failure: %d", code)
	}
	d.pairing.Reset() // clears the counters and the delays
	// Exchanges do not exclude each other.
	for range 2 {
		if code, _ := call(t, d, "POST", "/api/v1/pair/start", "", api.PairStart{}); code != http.StatusOK {
			t.Fatalf("start: %d", code)
		}
	}
	secret = d.pairing.SetupPayload(d.hostHintFor()).Secret
	code, p := pairWith(t, d, secret[:], "owner", "")
	if code != http.StatusCreated || !strings.HasPrefix(p.Token, "camd1."+d.id.ID+".") {
		t.Fatalf("pairing: %d %+v", code, p)
	}
	// The window is closed now that an owner exists.
	if code, _ := call(t, d, "POST", "/api/v1/pair/start", "", api.PairStart{}); code != http.StatusForbidden {
		t.Fatalf("start with the window closed: %d", code)
	}
	code, b := call(t, d, "GET", "/api/v1/me", p.Token, nil)
	if code != http.StatusOK || !strings.Contains(string(b), `"role": "owner"`) {
		t.Fatalf("me: %d %s", code, b)
	}
	// The owner opens the window for 15 minutes.
	if code, _ := call(t, d, "POST", "/api/v1/pair/window", p.Token, nil); code != http.StatusOK {
		t.Fatalf("open window: %d", code)
	}
	if code, _ := call(t, d, "POST", "/api/v1/pair/start", "", map[string]any{"bogus": 1}); code != http.StatusBadRequest {
		t.Fatalf("unknown field: %d", code)
	}
}

func TestUserManagementOverHTTPS(t *testing.T) {
	d := running(t)
	ownerToken := owner(t, d)
	viewerToken := viewer(t, d, ownerToken)
	code, b := call(t, d, "GET", "/api/v1/users", ownerToken, nil)
	var users []pairing.User
	json.Unmarshal(b, &users)
	if code != http.StatusOK || len(users) != 2 || bytes.Contains(b, []byte("token")) {
		t.Fatalf("users: %d %s", code, b)
	}
	vid := users[1].ID
	if code, _ := call(t, d, "PATCH", "/api/v1/users/"+vid, ownerToken, map[string]string{"name": "hall tablet"}); code != http.StatusNoContent {
		t.Fatalf("rename: %d", code)
	}
	if code, _ := call(t, d, "DELETE", "/api/v1/users/"+vid, ownerToken, nil); code != http.StatusNoContent {
		t.Fatalf("revoke: %d", code)
	}
	if code, _ := call(t, d, "GET", "/api/v1/me", viewerToken, nil); code != http.StatusUnauthorized {
		t.Fatalf("revoked viewer: %d", code)
	}
	if code, _ := call(t, d, "DELETE", "/api/v1/users/"+vid, ownerToken, nil); code != http.StatusNotFound {
		t.Fatalf("revoke twice: %d", code)
	}
	if code, _ := call(t, d, "POST", "/api/v1/users/invite", ownerToken, map[string]string{"role": "admin"}); code != http.StatusBadRequest {
		t.Fatalf("bad role: %d", code)
	}
	if code, b := call(t, d, "POST", "/api/v1/users/invite", ownerToken, map[string]string{"valid": "192h"}); code != http.StatusUnprocessableEntity ||
		!bytes.Contains(b, []byte(`"field":"valid"`)) {
		t.Fatalf("an 8-day invitation: %d %s", code, b)
	}
}

// An owner sees the invitations that can still be used, and cancels one:
// its payload no longer pairs.
func TestInvitationsListAndCancelOverHTTPS(t *testing.T) {
	d := running(t)
	ownerToken := owner(t, d)
	var inv struct {
		Payload  string `json:"payload"`
		InviteID string `json:"invite_id"`
	}
	code, b := call(t, d, "POST", "/api/v1/users/invite", ownerToken, map[string]string{"role": "viewer", "valid": "1h"})
	if code != http.StatusOK || json.Unmarshal(b, &inv) != nil {
		t.Fatalf("invite: %d %s", code, b)
	}
	code, b = call(t, d, "GET", "/api/v1/users/invitations", ownerToken, nil)
	var list []pairing.Invitation
	if code != http.StatusOK || json.Unmarshal(b, &list) != nil || len(list) != 1 || list[0].ID != inv.InviteID || list[0].Role != pairing.Viewer {
		t.Fatalf("invitations: %d %s", code, b)
	}
	if bytes.Contains(b, []byte(inv.Payload[len("CAMD1:"):])) {
		t.Fatal("the list carries the invitation's secret")
	}
	if code, _ := call(t, d, "DELETE", "/api/v1/users/invitations/"+inv.InviteID, ownerToken, nil); code != http.StatusNoContent {
		t.Fatalf("cancel: %d", code)
	}
	if code, _ := call(t, d, "DELETE", "/api/v1/users/invitations/"+inv.InviteID, ownerToken, nil); code != http.StatusNotFound {
		t.Fatalf("cancel twice: %d", code)
	}
	p, err := pairing.Parse(inv.Payload)
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := pairWith(t, d, p.Secret[:], "late", inv.InviteID); code == http.StatusCreated {
		t.Fatal("a cancelled invitation paired")
	}
	if code, b := call(t, d, "GET", "/api/v1/users/invitations", ownerToken, nil); code != http.StatusOK || string(bytes.TrimSpace(b)) != "[]" {
		t.Fatalf("invitations after cancel: %d %s", code, b)
	}
}

// BenchmarkPairingRoundTrip pairs over a fresh TLS connection each time
// (start + finish), with invitations so that every round is a real
// pairing.
func BenchmarkPairingRoundTrip(b *testing.B) {
	d := running(b)
	token := owner(b, d)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		p, err := d.pairing.Invite(pairing.InviteOptions{Role: pairing.Viewer}, d.hostHintFor())
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if code, _ := pairWith(b, d, p.Secret[:], "bench", pairing.InviteID(p.Secret[:])); code != http.StatusCreated {
			b.Fatalf("pairing: %d", code)
		}
	}
	_ = token
}

// A page on another origin can POST text/plain or a form without a CORS
// preflight: the public pairing routes refuse both (415), and answer no
// CORS header that would let the page read anything.
func TestPairingRoutesTakeOnlyJSON(t *testing.T) {
	d := running(t)
	for _, path := range []string{"/api/v1/pair/start", "/api/v1/pair/finish"} {
		for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""} {
			req, _ := http.NewRequest("POST", "https://"+d.Addr().String()+path, strings.NewReader(`{}`))
			if ct != "" {
				req.Header.Set("Content-Type", ct)
			}
			req.Header.Set("Origin", "https://evil.example")
			resp, err := testClient().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnsupportedMediaType || resp.Header.Get("Access-Control-Allow-Origin") != "" {
				t.Errorf("POST %s as %q: %s, CORS %q", path, ct, resp.Status, resp.Header.Get("Access-Control-Allow-Origin"))
			}
		}
	}
}

// docs/api.md lists every route of the routes table with its role, and
// nothing else.
func TestAPIDocListsEveryRoute(t *testing.T) {
	doc, err := os.ReadFile("../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `([A-Z]+ [^`]+)` \\| (public|stream|viewer|owner) \\|")
	listed := map[string]string{}
	for _, m := range row.FindAllStringSubmatch(string(doc), -1) {
		listed[m[1]] = m[2]
	}
	d := running(t)
	for _, r := range d.api.Routes() {
		role, ok := listed[r.Pattern]
		switch {
		case !ok:
			t.Errorf("docs/api.md does not list %s (%s)", r.Pattern, r.Role)
		case role != r.Role.String():
			t.Errorf("docs/api.md says %s is %s; the table says %s", r.Pattern, role, r.Role)
		}
		delete(listed, r.Pattern)
	}
	for p := range listed {
		t.Errorf("docs/api.md lists %s, which camd does not serve", p)
	}
}
