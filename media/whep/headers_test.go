package whep

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/pion/webrtc/v4"
)

var testICEServers = []webrtc.ICEServer{
	{URLs: []string{"stun:stun.example.net"}},
	{URLs: []string{"turn:turn.example.net?transport=udp", "turns:turn.example.net"}, Username: "user", Credential: `pa"ss`},
}

var wantLinks = []string{
	`<stun:stun.example.net>; rel="ice-server"`,
	`<turn:turn.example.net?transport=udp>; rel="ice-server"; username="user"; credential="pa\"ss"; credential-type="password"`,
	`<turns:turn.example.net>; rel="ice-server"; username="user"; credential="pa\"ss"; credential-type="password"`,
}

func TestOptionsAnswers204(t *testing.T) {
	ts := newTestServer(t, Options{User: headerUser, ICEServers: testICEServers})
	cases := []struct {
		name  string
		hdr   http.Header
		links []string
	}{
		{"a paired user learns the ICE servers", alice, wantLinks},
		{"a request without a user (a CORS preflight) does not", nil, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, _ := doAs(t, c.hdr, http.MethodOptions, ts.url, "", "")
			if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Accept-Post") != ContentTypeSDP {
				t.Fatalf("OPTIONS: %d %v", resp.StatusCode, resp.Header)
			}
			if got := resp.Header.Values("Link"); !slices.Equal(got, c.links) {
				t.Fatalf("Link headers %q, want %q", got, c.links)
			}
		})
	}
}

func TestCreatedCarriesETagAndICEServers(t *testing.T) {
	ts := newTestServer(t, Options{ICEServers: testICEServers})
	resp, _ := do(t, http.MethodPost, ts.url, ContentTypeSDP, offer(t, []webrtc.RTPCodecParameters{h264CB}, nil))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST: %s", resp.Status)
	}
	etag := resp.Header.Get("ETag")
	if len(etag) < 3 || etag[0] != '"' || etag[len(etag)-1] != '"' {
		t.Fatalf("ETag %q is not a strong entity tag", etag)
	}
	if got := resp.Header.Values("Link"); !slices.Equal(got, wantLinks) {
		t.Fatalf("Link headers %q", got)
	}
	loc := ts.http.URL + resp.Header.Get("Location")
	frag := "a=mid:0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host\r\n"
	cases := []struct {
		name    string
		ifMatch []string
		code    int
	}{
		{"another ICE session's tag", []string{`"0123456789abcdef"`}, http.StatusPreconditionFailed},
		{"a weak tag never matches", []string{"W/" + etag}, http.StatusPreconditionFailed},
		{"the session's tag", []string{etag}, http.StatusNoContent},
		{"in a list", []string{`"other", ` + etag}, http.StatusNoContent},
		{"any", []string{"*"}, http.StatusNoContent},
		{"no If-Match", nil, http.StatusNoContent},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := doAs(t, http.Header{"If-Match": c.ifMatch}, http.MethodPatch, loc, ContentTypeFrag, frag)
			if resp.StatusCode != c.code {
				t.Fatalf("PATCH: %d %q, want %d", resp.StatusCode, body, c.code)
			}
		})
	}
	do(t, http.MethodDelete, loc, "", "")
}

func TestParseICEServerLinks(t *testing.T) {
	// What camd's own server (and MediaMTX) writes reads back.
	got := parseICEServerLinks(wantLinks)
	want := []webrtc.ICEServer{
		{URLs: []string{"stun:stun.example.net"}},
		{URLs: []string{"turn:turn.example.net?transport=udp"}, Username: "user", Credential: `pa"ss`, CredentialType: webrtc.ICECredentialTypePassword},
		{URLs: []string{"turns:turn.example.net"}, Username: "user", Credential: `pa"ss`, CredentialType: webrtc.ICECredentialTypePassword},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("camd's links read as\n%+v\nwant\n%+v", got, want)
	}
	for _, tc := range []struct {
		name   string
		values []string
		want   string
	}{
		{"several in one value", []string{`<stun:a>; rel="ice-server", <stun:b>;rel=ice-server`}, "[stun:a stun:b]"},
		{"other relations", []string{`</next>; rel="next"`, `<stun:a>; rel="ICE-Server"`}, "[stun:a]"},
		{"not STUN or TURN", []string{`<https://x>; rel="ice-server"`, `<stun:>; rel="ice-server"`}, "[]"},
		{"unterminated quote", []string{`<stun:a>; rel="ice-server"; username="x`}, "[]"},
		{"no angle brackets", []string{`stun:a; rel="ice-server"`}, "[]"},
		{"first rel counts", []string{`<stun:a>; rel="next"; rel="ice-server"`}, "[]"},
		{"a comma inside quotes", []string{`<turn:a>; rel="ice-server"; username="u,v"; credential=c`}, "[turn:a]"},
		{"at most eight", []string{strings.Repeat(`<stun:a>; rel="ice-server", `, 20)}, "[stun:a stun:a stun:a stun:a stun:a stun:a stun:a stun:a]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var urls []string
			for _, s := range parseICEServerLinks(tc.values) {
				urls = append(urls, s.URLs...)
			}
			if got := fmt.Sprint(urls); got != tc.want {
				t.Errorf("%q: %s, want %s", tc.values, got, tc.want)
			}
		})
	}
	if s := parseICEServerLinks([]string{`<turn:a>; rel="ice-server"; username="u,v"; credential=c`}); s[0].Username != "u,v" || s[0].Credential != "c" {
		t.Errorf("credentials %+v", s[0])
	}
}

// FuzzParseICEServerLinks: any header reads without panic into at most
// maxICEServerLinks STUN or TURN servers, and the servers read format
// into links that read back the same.
func FuzzParseICEServerLinks(f *testing.F) {
	for _, l := range wantLinks {
		f.Add(l)
	}
	f.Add(`<stun:a>; rel="ice-server", <turn:b>;rel=ice-server;username=u;credential="p\\q"`)
	f.Fuzz(func(t *testing.T, v string) {
		got := parseICEServerLinks([]string{v})
		if len(got) > maxICEServerLinks {
			t.Fatalf("%d servers", len(got))
		}
		for _, s := range got {
			if len(s.URLs) != 1 || !iceURL(s.URLs[0]) || strings.ContainsAny(s.URLs[0], "<>") {
				t.Fatalf("server %+v", s)
			}
		}
		again := parseICEServerLinks(iceServerLinks(got))
		if fmt.Sprint(again) != fmt.Sprint(got) {
			t.Fatalf("%q: %+v, formatted and read again %+v", v, got, again)
		}
	})
}
