package onvif

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// FuzzSOAP posts any body (the seeds: every request the tests send,
// and malformed ones under testdata/fuzz/FuzzSOAP) to the service: it
// never panics, never answers 2xx without a well-formed envelope, and
// keeps answering.
func FuzzSOAP(f *testing.F) {
	// A pull waits at most 10 ms: a mutated PullMessages does not hold
	// a worker for a minute.
	fx := newFixture(f, func(o *Options) { o.MaxBody = 8 << 10; o.MaxPullTimeout = 10 * time.Millisecond })
	for _, body := range []string{
		`<tds:GetSystemDateAndTime/>`, `<tds:GetDeviceInformation/>`, `<trt:GetProfiles/>`,
		`<trt:GetStreamUri><trt:StreamSetup><tt:Stream>RTP-Unicast</tt:Stream></trt:StreamSetup><trt:ProfileToken>main</trt:ProfileToken></trt:GetStreamUri>`,
		`<tev:CreatePullPointSubscription><tev:InitialTerminationTime>PT10S</tev:InitialTerminationTime></tev:CreatePullPointSubscription>`,
		`<tev:PullMessages><tev:Timeout>PT0S</tev:Timeout><tev:MessageLimit>5</tev:MessageLimit></tev:PullMessages>`,
		`<wsnt:Renew><wsnt:TerminationTime>PT1M</wsnt:TerminationTime></wsnt:Renew>`,
	} {
		f.Add(fx.envelope(fx.key(), body))
		f.Add(fx.envelope(nil, body))
	}
	f.Fuzz(func(t *testing.T, body string) {
		for _, path := range []string{DevicePath, SubscriptionPath + "1"} {
			resp, err := http.Post(fx.ts.URL+path, "application/soap+xml", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				if _, err := parse(strings.NewReader(string(b))); err != nil {
					t.Fatalf("200 with an answer that does not parse: %v\n%s", err, b)
				}
			}
		}
	})
}

// FuzzParse reads any bytes as a request, without HTTP: no panic, and a
// request that parses has its one action.
func FuzzParse(f *testing.F) {
	fx := newFixture(f, nil)
	for _, body := range []string{`<tds:GetSystemDateAndTime/>`, `<trt:GetProfiles/>`, `<tev:PullMessages><tev:Timeout>PT1S</tev:Timeout></tev:PullMessages>`} {
		f.Add(fx.envelope(fx.key(), body))
	}
	f.Add(`<!DOCTYPE x><x/>`)
	f.Fuzz(func(t *testing.T, body string) {
		req, err := parse(strings.NewReader(body))
		if err == nil && req.Action == nil {
			t.Fatal("parsed without an action")
		}
		if err == nil {
			readToken(req.Token)
		}
	})
}
