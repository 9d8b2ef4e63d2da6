package onvif

import (
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/camd-project/camd/device/events"
)

// The key the tests' Verify knows, and the user it acts as.
const (
	testKey    = "3f9a2b1c0d4e5f60"
	testSecret = "Xy0123456789abcdefghijklmnopqrst"
	testUser   = "key:" + testKey
)

var errTestKey = errors.New("test: unknown key")

// fixture is a Server on a loopback HTTP server with a fake clock, a
// real event bus, and a key that can be revoked.
type fixture struct {
	t   testing.TB
	srv *Server
	ts  *httptest.Server
	bus *events.Bus

	mu      sync.Mutex
	now     time.Time
	revoked bool
}

func newFixture(t testing.TB, tune func(*Options)) *fixture {
	t.Helper()
	f := &fixture{t: t, bus: events.New(events.Options{}), now: time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)}
	o := Options{
		Device: Device{Manufacturer: "camd", Model: "generic", Firmware: "test", Serial: "0123456789abcdef"},
		Verify: func(user string, proof func(string) bool) (string, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			if user != testKey || f.revoked || !proof(testSecret) {
				return "", errTestKey
			}
			return testUser, nil
		},
		RTSPPort: 8554, RTSPPath: "/live",
		SnapshotURL: func(host string) string { return "https://" + host + ":8443/api/v1/snapshot.jpg" },
		Video:       func() Video { return Video{Width: 1280, Height: 720, FPS: 30, Bitrate: 2_000_000} },
		Name:        func() string { return "Front Door" },
		Scopes:      func() []string { return []string{"onvif://www.onvif.org/name/Front%20Door"} },
		Subscribe: func(user string, kinds []string) (Subscription, error) {
			return f.bus.Subscribe(nil, events.Subscriber{User: user, Kinds: kinds})
		},
		Now: f.clock,
	}
	if tune != nil {
		tune(&o)
	}
	srv, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	f.srv = srv
	f.ts = httptest.NewServer(srv)
	t.Cleanup(func() {
		f.ts.Close()
		srv.Close()
		f.bus.Close()
	})
	return f
}

func (f *fixture) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fixture) advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
}

// creds make a UsernameToken.
type creds struct {
	user, secret string
	nonce        []byte    // nil: random
	created      time.Time // zero: the fixture's clock
	text         bool      // PasswordText instead of a digest
}

func (f *fixture) key() *creds { return &creds{user: testKey, secret: testSecret} }

// header is the WS-Security header of c, as clients write it.
func (f *fixture) header(c *creds) string {
	if c == nil {
		return ""
	}
	nonce := c.nonce
	if nonce == nil {
		nonce = make([]byte, 16)
		rand.Read(nonce)
	}
	created := c.created
	if created.IsZero() {
		created = f.clock()
	}
	cr := created.UTC().Format("2006-01-02T15:04:05.000Z")
	h := sha1.Sum([]byte(string(nonce) + cr + c.secret))
	pw, typ := base64.StdEncoding.EncodeToString(h[:]), passwordDigest
	if c.text {
		pw, typ = c.secret, strings.Replace(passwordDigest, "Digest", "Text", 1)
	}
	return `<s:Header><wsse:Security s:mustUnderstand="1" xmlns:wsse="` + nsWSSE + `" xmlns:wsu="` + nsWSU + `">` +
		`<wsse:UsernameToken><wsse:Username>` + c.user + `</wsse:Username>` +
		`<wsse:Password Type="` + typ + `">` + pw + `</wsse:Password>` +
		`<wsse:Nonce EncodingType="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary">` +
		base64.StdEncoding.EncodeToString(nonce) + `</wsse:Nonce><wsu:Created>` + cr + `</wsu:Created></wsse:UsernameToken></wsse:Security></s:Header>`
}

// envelope wraps body (which may use the prefixes tds, trt, tt, tev,
// wsnt) in a SOAP 1.2 envelope with c's token.
func (f *fixture) envelope(c *creds, body string) string {
	return `<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="` + nsSOAP + `" xmlns:tds="` + nsDevice +
		`" xmlns:trt="` + nsMedia + `" xmlns:tt="` + nsSchema + `" xmlns:tev="` + nsEvents + `" xmlns:wsnt="` + nsWSNT + `">` +
		f.header(c) + `<s:Body>` + body + `</s:Body></s:Envelope>`
}

// answer is a parsed answer: its status and body element.
type answer struct {
	status int
	body   *node
	raw    string
}

// faultCodes lists a fault's code and subcodes ("env:Sender",
// "ter:NotAuthorized"), nil for an answer that is not a fault.
func (a answer) faultCodes() []string {
	if a.body == nil || a.body.Name.Local != "Fault" {
		return nil
	}
	var codes []string
	for n := a.body.child("Code"); n != nil; n = n.child("Subcode") {
		codes = append(codes, n.text("Value"))
	}
	return codes
}

func (f *fixture) post(path, envelope string) answer {
	f.t.Helper()
	resp, err := http.Post(f.ts.URL+path, "application/soap+xml; charset=utf-8", strings.NewReader(envelope))
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, raw: string(b)}
	if req, err := parse(bytes.NewReader(b)); err == nil {
		a.body = req.Action
	}
	return a
}

// call posts body with c's token to the device service.
func (f *fixture) call(c *creds, body string) answer {
	f.t.Helper()
	return f.post(DevicePath, f.envelope(c, body))
}
