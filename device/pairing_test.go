package device

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

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
	t.Cleanup(func() { cancel(); <-done })
	return d
}

// testClient makes a new connection for each request and closes it
// after, so that the tests' many calls stay under the daemon's
// connections per address.
func testClient() *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true}, Timeout: 10 * time.Second}
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
	resp, err := testClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// pairWith runs the pairing exchange over HTTPS with a secret.
func pairWith(t testing.TB, d *Daemon, secret []byte, name, invite string) (int, Paired) {
	t.Helper()
	code, b := call(t, d, "POST", "/api/v1/pair/start", "", PairStart{InviteID: invite})
	if code != http.StatusOK {
		return code, Paired{}
	}
	var st PairStarted
	json.Unmarshal(b, &st)
	code, b = call(t, d, "POST", "/api/v1/pair/finish", "", PairFinish{
		Nonce: st.Nonce, Name: name, InviteID: invite, Proof: pairing.Proof(secret, st.DeviceID, st.Nonce, name),
	})
	var p Paired
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

// viewer pairs a viewer through an invitation.
func viewer(t testing.TB, d *Daemon, ownerToken string) string {
	t.Helper()
	code, b := call(t, d, "POST", "/api/v1/users/invite", ownerToken, InviteRequest{Role: pairing.Viewer})
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
	public := map[string]bool{
		"GET /health": true, "GET /{$}": true, "GET /app.js": true, "GET /app.css": true, "GET /recordings.js": true,
		"POST /api/v1/pair/start": true, "POST /api/v1/pair/finish": true,
	}
	seen := 0
	for _, r := range d.routes() {
		method, pattern, _ := strings.Cut(r.pattern, " ")
		path := strings.ReplaceAll(pathParam.ReplaceAllString(pattern, "x"), "/x$", "/")
		if strings.HasSuffix(pattern, "{$}") {
			path = strings.TrimSuffix(pattern, "{$}")
		}
		if r.role == Public {
			if !public[r.pattern] {
				t.Errorf("%s is public but not on the list of routes allowed to be", r.pattern)
			}
			continue
		}
		seen++
		for name, tok := range map[string]string{"no credential": "", "garbage": "nonsense", "another device": "camd1.BBBBBBBBBBBBBBBB.xyz"} {
			if code, _ := call(t, d, method, path, tok, nil); code != http.StatusUnauthorized {
				t.Errorf("%s with %s: %d, want 401", r.pattern, name, code)
			}
		}
		if r.role == Owner {
			if code, _ := call(t, d, method, path, viewerToken, nil); code != http.StatusForbidden {
				t.Errorf("%s as a viewer: %d, want 403", r.pattern, code)
			}
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
	if code, _ := call(t, d, "POST", "/api/v1/pair/start", "", PairStart{}); code != http.StatusTooManyRequests {
		t.Fatalf("start right after a failure: %d", code)
	}
	d.pairing.Reset() // clears the counters and the delays
	// Exchanges do not exclude each other.
	for range 2 {
		if code, _ := call(t, d, "POST", "/api/v1/pair/start", "", PairStart{}); code != http.StatusOK {
			t.Fatalf("start: %d", code)
		}
	}
	secret = d.pairing.SetupPayload(d.hostHintFor()).Secret
	code, p := pairWith(t, d, secret[:], "owner", "")
	if code != http.StatusCreated || !strings.HasPrefix(p.Token, "camd1."+d.id.ID+".") {
		t.Fatalf("pairing: %d %+v", code, p)
	}
	// The window is closed now that an owner exists.
	if code, _ := call(t, d, "POST", "/api/v1/pair/start", "", PairStart{}); code != http.StatusForbidden {
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
}

func BenchmarkCredentialCheck(b *testing.B) {
	d := running(b)
	token := owner(b, d)
	h := d.authorize(Viewer, func(w http.ResponseWriter, r *http.Request) {})
	req, _ := http.NewRequest("GET", "/api/v1/me", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		h.ServeHTTP(w, req)
	}
}

type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(int)             {}

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
