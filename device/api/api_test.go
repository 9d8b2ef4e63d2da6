package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/camd-project/camd/device/pairing"
	"github.com/camd-project/camd/storage"
)

// credentials are fake credentials: each token is a user.
type credentials map[string]pairing.User

func (c credentials) Authenticate(token string) (pairing.User, error) {
	if token == "" {
		return pairing.User{}, pairing.ErrNoCredential
	}
	u, ok := c[token]
	if !ok {
		return pairing.User{}, pairing.ErrUnknownCredential
	}
	return u, nil
}

// AuthenticateKey takes the key "k1" with the secret "s3cret".
func (c credentials) AuthenticateKey(id, secret string) (pairing.User, error) {
	return c.Authenticate("basic:" + id + ":" + secret)
}

var (
	theOwner  = pairing.User{ID: "u-owner", Name: "owner", Role: pairing.Owner, TokenHash: []byte("secret hash")}
	theViewer = pairing.User{ID: "u-viewer", Name: "viewer", Role: pairing.Viewer}
	theKey    = pairing.User{ID: pairing.KeySubject("k1"), Name: "nvr", Role: pairing.Viewer, Key: "k1"}
	tokens    = credentials{"owner-token": theOwner, "viewer-token": theViewer, "key-token": theKey, "basic:k1:s3cret": theKey}
)

// request is one call of a feature's routes.
type request struct {
	method, path, token, body string
	header                    map[string]string
}

// do serves r through routes behind the fake credentials.
func do(t testing.TB, routes []Route, r request) *httptest.ResponseRecorder {
	t.Helper()
	return doWith(t, serve(tokens, discard, routes, nil), r)
}

func doWith(t testing.TB, h http.Handler, r request) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(r.method, r.path, strings.NewReader(r.body))
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	if r.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

// answer checks the status and decodes a JSON body into v (if not nil).
func answer(t testing.TB, w *httptest.ResponseRecorder, code int, v any) {
	t.Helper()
	if w.Code != code {
		t.Fatalf("%d %s, want %d", w.Code, w.Body, code)
	}
	if v != nil {
		if err := json.Unmarshal(w.Body.Bytes(), v); err != nil {
			t.Fatalf("answer %s: %v", w.Body, err)
		}
	}
}

// errorOf is the "error" of a JSON error answer.
func errorOf(t testing.TB, w *httptest.ResponseRecorder) string {
	t.Helper()
	var e struct{ Error string }
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error == "" {
		t.Fatalf("not a JSON error: %d %s", w.Code, w.Body)
	}
	return e.Error
}

func TestAuthorize(t *testing.T) {
	var seen pairing.User
	h := func(w http.ResponseWriter, r *http.Request) { seen = UserFrom(r.Context()) }
	var logged bytes.Buffer
	srv := serve(tokens, slog.New(slog.NewTextHandler(&logged, nil)), []Route{
		{"GET /public", Public, h},
		{"GET /stream", Stream, h},
		{"GET /viewer", Viewer, h},
		{"GET /owner", Owner, h},
	}, nil)
	for _, c := range []struct {
		path, token string
		code        int
		user        string
		logs        bool
	}{
		{"/stream", "", 401, "", false},
		{"/stream", "key-token", 200, "key:k1", false},
		{"/stream", "basic k1:s3cret", 200, "key:k1", false},
		{"/stream", "basic k1:wrong", 401, "", true},
		{"/stream", "viewer-token", 200, "u-viewer", false},
		{"/stream", "owner-token", 200, "u-owner", false},
		{"/viewer", "key-token", 403, "", false},
		{"/viewer", "basic k1:s3cret", 401, "", true},
		{"/owner", "key-token", 403, "", false},
		{"/owner", "basic k1:s3cret", 401, "", true},
		{"/public", "", 200, "", false},
		{"/public", "viewer-token", 200, "u-viewer", false},
		{"/public", "nonsense", 200, "", false},
		{"/viewer", "", 401, "", false},
		{"/viewer", "nonsense", 401, "", true},
		{"/viewer", "viewer-token", 200, "u-viewer", false},
		{"/viewer", "owner-token", 200, "u-owner", false},
		{"/owner", "", 401, "", false},
		{"/owner", "viewer-token", 403, "", false},
		{"/owner", "owner-token", 200, "u-owner", false},
	} {
		seen = pairing.User{}
		logged.Reset()
		req := request{method: "GET", path: c.path, token: c.token}
		if basic, ok := strings.CutPrefix(c.token, "basic "); ok {
			id, secret, _ := strings.Cut(basic, ":")
			req = request{method: "GET", path: c.path, header: map[string]string{"Authorization": basicAuth(id, secret)}}
		}
		w := doWith(t, srv, req)
		if w.Code != c.code || seen.ID != c.user {
			t.Errorf("%s with %q: %d as %q, want %d as %q", c.path, c.token, w.Code, seen.ID, c.code, c.user)
		}
		want := []string{`Bearer realm="camd"`}
		if c.path == "/stream" {
			want = []string{`Basic realm="camd", charset="UTF-8"`, `Bearer realm="camd"`}
		}
		if got := w.Header().Values("WWW-Authenticate"); w.Code == 401 && strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("%s with %q: 401 with WWW-Authenticate %q", c.path, c.token, got)
		}
		// A refused credential is logged; a request without one is not.
		if got := strings.Contains(logged.String(), "credential refused"); got != c.logs {
			t.Errorf("%s with %q: logged %q", c.path, c.token, logged.String())
		}
		if w.Header().Get("Content-Security-Policy") == "" || w.Header().Get("X-Content-Type-Options") != "nosniff" ||
			w.Header().Get("Strict-Transport-Security") != "max-age=31536000" {
			t.Errorf("%s: security headers %v", c.path, w.Header())
		}
	}
}

func basicAuth(id, secret string) string {
	r := httptest.NewRequest("GET", "/", nil)
	r.SetBasicAuth(id, secret)
	return r.Header.Get("Authorization")
}

// TestRoutesTable checks the table itself: one entry per pattern, and
// only the routes that must answer anyone are public. The role of every
// route is checked over HTTPS by the daemon's tests
// (TestEveryRouteNeedsACredential).
func TestRoutesTable(t *testing.T) {
	a := &API{
		Web: &Web{}, Pairing: &Pairing{}, Users: &Users{}, Live: &Live{WHEP: &fakeWHEP{}},
		Recordings: &Recordings{WHEP: &fakeWHEP{}}, Snapshots: &Snapshots{}, Events: &Events{}, Settings: &Settings{}, Storage: &Storage{},
		Update: &Update{}, Push: &Push{}, Webhooks: &Webhooks{}, Logs: &Logs{}, Crashes: &Crashes{}, Metrics: &Metrics{}, Calls: &Calls{},
		Discovered: &Discovered{},
		Cameras:    &Cameras{WHEP: &fakeWHEP{}},
	}
	seen := map[string]bool{}
	var public []string
	for _, r := range a.Routes() {
		if seen[r.Pattern] {
			t.Errorf("%s twice", r.Pattern)
		}
		seen[r.Pattern] = true
		if r.handler == nil {
			t.Errorf("%s has no handler", r.Pattern)
		}
		if r.Role == Public {
			public = append(public, r.Pattern)
		}
	}
	want := "GET /health, GET /{$}, GET /app.js, GET /app.css, GET /recordings.js, GET /call.js, " +
		"GET /shell.js, GET /events.js, GET /settings.js, GET /users.js, GET /keys.js, GET /snapshots.js, GET /device.js, GET /pairing.js, GET /sw.js, GET /manifest.json, GET /icon-192.png, GET /icon-512.png, " +
		"GET /live.js, GET /text.js, POST /api/v1/pair/start, POST /api/v1/pair/finish, OPTIONS /api/v1/whep, OPTIONS /api/v1/cameras/{camera}/whep"
	if got := strings.Join(public, ", "); got != want {
		t.Errorf("public routes: %s\nwant %s", got, want)
	}
}

func TestDecodeRefusesUnknownFields(t *testing.T) {
	var v struct {
		Name string `json:"name"`
	}
	post := func(body, contentType string) *http.Request {
		r := httptest.NewRequest("POST", "/", strings.NewReader(body))
		r.Header.Set("Content-Type", contentType)
		return r
	}
	for body, ok := range map[string]bool{`{"name": "x"}`: true, ``: true, `{"bogus": 1}`: false, `{`: false} {
		w := httptest.NewRecorder()
		if got := decode(w, post(body, "application/json; charset=utf-8"), &v); got != ok {
			t.Errorf("%q: %v", body, got)
		}
		if !ok && w.Code != 400 {
			t.Errorf("%q: %d", body, w.Code)
		}
	}
	// Bodies are small.
	w := httptest.NewRecorder()
	if decode(w, post(`{"name": "`+strings.Repeat("x", 20<<10)+`"}`, "application/json"), &v) || w.Code != 400 {
		t.Errorf("20 KiB body: %d", w.Code)
	}
	// Only JSON: what a page on another origin can send without a CORS
	// preflight (text/plain, a form) is refused.
	for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""} {
		w := httptest.NewRecorder()
		if decode(w, post(`{"name": "x"}`, ct), &v) || w.Code != http.StatusUnsupportedMediaType {
			t.Errorf("Content-Type %q: %d, want 415", ct, w.Code)
		}
	}
}

func TestParseTime(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"now":                  now,
		"":                     now,
		"-60s":                 now.Add(-time.Minute),
		"+1h30m":               now.Add(90 * time.Minute),
		"2025-06-01T08:00:00Z": time.Date(2025, 6, 1, 8, 0, 0, 0, time.UTC),
		"1748764800":           time.Unix(1748764800, 0),
		"1748764800.25":        time.Unix(1748764800, 250_000_000),
		"253402300799":         time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
		"9223372037":           time.Unix(9223372037, 0), // past int64 nanoseconds: not wrapped
		"2300-01-01T00:00:00Z": time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC),
	} {
		got, err := parseTime(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	// Unix seconds past the year 9999 are refused, not wrapped into some
	// other time; so are numbers that are no time at all.
	for _, bad := range []string{"yesterday", "-5 minutes", "2025-13-01T00:00:00Z",
		"253402300800", "1e300", "NaN", "Inf", "-1",
		"10000-01-01T00:00:00Z"} {
		if _, err := parseTime(bad, now); err == nil {
			t.Errorf("parseTime(%q) accepted", bad)
		}
	}
}

// BenchmarkCredentialCheck is the cost every guarded request pays: the
// middleware and the pairing manager's credential check, with an owner
// paired through the pairing routes.
func BenchmarkCredentialCheck(b *testing.B) {
	cat, err := storage.OpenCatalog(filepath.Join(b.TempDir(), "catalog.db"), storage.CatalogOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer cat.Close()
	const deviceID = "AAAQEAYEAUDAOCAJ"
	m, err := pairing.Open(cat, pairing.Options{DeviceID: deviceID})
	if err != nil {
		b.Fatal(err)
	}
	routes := (&Pairing{Exchange: m, Window: m, DeviceID: deviceID}).routes()
	var st PairStarted
	answer(b, do(b, routes, request{method: "POST", path: "/api/v1/pair/start", body: "{}"}), 200, &st)
	secret := m.SetupPayload(netip.AddrPort{}).Secret
	body, _ := json.Marshal(PairFinish{Nonce: st.Nonce, Name: "owner", Proof: pairing.Proof(secret[:], st.DeviceID, st.Nonce, "owner")})
	var p Paired
	answer(b, do(b, routes, request{method: "POST", path: "/api/v1/pair/finish", body: string(body)}), 201, &p)

	h := authorize(m, discard, Viewer, func(w http.ResponseWriter, r *http.Request) {})
	req, _ := http.NewRequest("GET", "/api/v1/me", nil)
	req.Header.Set("Authorization", "Bearer "+p.Token)
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, req)
	}
}

type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(int)             {}

var (
	errDisk = errors.New("catalog: input/output error")
	discard = slog.New(slog.DiscardHandler)
)
