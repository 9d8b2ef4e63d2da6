package api

import (
	"net/http"
	"testing"
)

// corsAPI is the live and recordings routes with one allowed origin.
func corsAPI() http.Handler {
	routes := append((&Live{WHEP: &fakeWHEP{}}).routes(), recordingsAPI(&fakeRecordings{}, &fakeWHEP{})...)
	routes = append(routes, Route{"PATCH /api/v1/settings", Owner, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) }})
	routes = append(routes, Route{"POST /api/v1/pair/start", Public, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(200) }})
	return serve(tokens, discard, routes, func() []string { return []string{"https://ha.example:8123"} })
}

const allowed, stranger = "https://ha.example:8123", "https://evil.example"

func TestCORSPreflight(t *testing.T) {
	h := corsAPI()
	cases := []struct {
		name, origin, method, path string
		code                       int
		allow                      bool
	}{
		{"WHEP offer from an allowed origin", allowed, "POST", "/api/v1/whep", 204, true},
		{"trickle from an allowed origin", allowed, "PATCH", "/api/v1/whep/abc", 204, true},
		{"export from an allowed origin", allowed, "GET", "/api/v1/recordings/export", 204, true},
		{"OPTIONS of the WHEP endpoint itself", allowed, "OPTIONS", "/api/v1/whep", 204, true},
		{"a disallowed origin", stranger, "POST", "/api/v1/whep", 204, false},
		{"an owner route from an allowed origin", allowed, "PATCH", "/api/v1/settings", 405, false},
		{"pairing from an allowed origin", allowed, "POST", "/api/v1/pair/start", 405, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := doWith(t, h, request{method: "OPTIONS", path: c.path, header: map[string]string{
				"Origin": c.origin, "Access-Control-Request-Method": c.method, "Access-Control-Request-Headers": "authorization, content-type",
			}})
			if w.Code != c.code {
				t.Fatalf("preflight: %d %s, want %d", w.Code, w.Body, c.code)
			}
			got := w.Header().Get("Access-Control-Allow-Origin")
			if (got != "") != c.allow || (c.allow && got != c.origin) {
				t.Fatalf("Access-Control-Allow-Origin %q (allowed: %v)", got, c.allow)
			}
			if c.allow && (w.Header().Get("Access-Control-Allow-Methods") != c.method ||
				w.Header().Get("Access-Control-Allow-Headers") != corsAllowHeaders) {
				t.Fatalf("preflight headers %v", w.Header())
			}
		})
	}
}

func TestCORSRequests(t *testing.T) {
	h := corsAPI()
	cases := []struct {
		name, origin, method, path, token string
		code                              int
		allow                             bool
	}{
		{"viewer API from an allowed origin", allowed, "POST", "/api/v1/whep", "viewer-token", 201, true},
		{"no credential: still 401, readable", allowed, "POST", "/api/v1/whep", "", 401, true},
		{"a disallowed origin gets no CORS headers", stranger, "POST", "/api/v1/whep", "viewer-token", 201, false},
		{"an owner route needs the owner credential", allowed, "PATCH", "/api/v1/settings", "viewer-token", 403, false},
		{"an owner route answers the owner, unreadable cross-origin", allowed, "PATCH", "/api/v1/settings", "owner-token", 204, false},
		{"no Origin: same-origin as before", "", "POST", "/api/v1/whep", "viewer-token", 201, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hdr := map[string]string{}
			if c.origin != "" {
				hdr["Origin"] = c.origin
			}
			w := doWith(t, h, request{method: c.method, path: c.path, token: c.token, header: hdr})
			if w.Code != c.code {
				t.Fatalf("%d %s, want %d", w.Code, w.Body, c.code)
			}
			got := w.Header().Get("Access-Control-Allow-Origin")
			if (got != "") != c.allow || (c.allow && got != c.origin) {
				t.Fatalf("Access-Control-Allow-Origin %q (allowed: %v)", got, c.allow)
			}
			if c.allow && w.Header().Get("Access-Control-Expose-Headers") != corsExposeHeaders {
				t.Fatalf("expose headers %q", w.Header().Get("Access-Control-Expose-Headers"))
			}
		})
	}
}

func TestCORSOffByDefault(t *testing.T) {
	h := serve(tokens, discard, (&Live{WHEP: &fakeWHEP{}}).routes(), nil)
	w := doWith(t, h, request{method: "OPTIONS", path: "/api/v1/whep", header: map[string]string{
		"Origin": allowed, "Access-Control-Request-Method": "POST",
	}})
	if w.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("CORS without allowed origins: %v", w.Header())
	}
}

func TestWHEPOptionsNamesICEServersToAPairedUser(t *testing.T) {
	h := serve(tokens, discard, (&Live{WHEP: &fakeWHEP{}}).routes(), nil)
	for _, c := range []struct {
		token string
		link  bool
	}{{"", false}, {"nonsense", false}, {"viewer-token", true}} {
		w := doWith(t, h, request{method: "OPTIONS", path: "/api/v1/whep", token: c.token})
		if w.Code != 204 || (w.Header().Get("Link") != "") != c.link {
			t.Errorf("OPTIONS with %q: %d, Link %q", c.token, w.Code, w.Header().Get("Link"))
		}
	}
}
