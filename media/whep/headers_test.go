package whep

import (
	"net/http"
	"slices"
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
