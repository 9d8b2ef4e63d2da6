package onvif

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestProfileSCalls: every Profile S call a client makes answers what
// camd is, with a key's UsernameToken.
func TestProfileSCalls(t *testing.T) {
	f := newFixture(t, nil)
	host := strings.TrimPrefix(f.ts.URL, "http://")
	hostname := host[:strings.LastIndex(host, ":")]
	for _, tc := range []struct {
		body string
		want map[string]string // path (slash-separated local names under the answer) → text
	}{
		{`<tds:GetDeviceInformation/>`, map[string]string{"Manufacturer": "camd", "Model": "generic", "FirmwareVersion": "test", "SerialNumber": "0123456789abcdef"}},
		{`<tds:GetCapabilities><tds:Category>All</tds:Category></tds:GetCapabilities>`, map[string]string{
			"Capabilities/Device/XAddr": f.ts.URL + DevicePath, "Capabilities/Media/XAddr": f.ts.URL + MediaPath,
			"Capabilities/Events/XAddr": f.ts.URL + EventsPath, "Capabilities/Events/WSPullPointSupport": "true",
			"Capabilities/Media/StreamingCapabilities/RTP_RTSP_TCP": "true",
		}},
		{`<tds:GetServices><tds:IncludeCapability>false</tds:IncludeCapability></tds:GetServices>`, map[string]string{"Service/Namespace": nsDevice, "Service/XAddr": f.ts.URL + DevicePath}},
		{`<tds:GetScopes/>`, map[string]string{"Scopes/ScopeItem": "onvif://www.onvif.org/name/Front%20Door"}},
		{`<tds:GetHostname/>`, map[string]string{"HostnameInformation/Name": "front-door"}},
		{`<tds:GetNetworkInterfaces/>`, nil},
		{`<tds:GetSystemDateAndTime/>`, map[string]string{"SystemDateAndTime/UTCDateTime/Date/Year": "2026", "SystemDateAndTime/UTCDateTime/Time/Hour": "8"}},
		{`<trt:GetProfiles/>`, map[string]string{"Profiles/Name": "camd", "Profiles/VideoEncoderConfiguration/Encoding": "H264",
			"Profiles/VideoEncoderConfiguration/Resolution/Width": "1280", "Profiles/VideoEncoderConfiguration/Resolution/Height": "720",
			"Profiles/VideoEncoderConfiguration/RateControl/FrameRateLimit": "30", "Profiles/VideoEncoderConfiguration/RateControl/BitrateLimit": "2000",
			"Profiles/VideoSourceConfiguration/SourceToken": "video"}},
		{`<trt:GetVideoSources/>`, map[string]string{"VideoSources/Framerate": "30", "VideoSources/Resolution/Width": "1280"}},
		{`<trt:GetVideoEncoderConfigurations/>`, map[string]string{"Configurations/Encoding": "H264", "Configurations/H264/H264Profile": "Baseline"}},
		{`<trt:GetStreamUri><trt:StreamSetup><tt:Stream>RTP-Unicast</tt:Stream><tt:Transport><tt:Protocol>RTSP</tt:Protocol></tt:Transport></trt:StreamSetup><trt:ProfileToken>main</trt:ProfileToken></trt:GetStreamUri>`,
			map[string]string{"MediaUri/Uri": "rtsp://" + hostname + ":8554/live"}},
		{`<trt:GetSnapshotUri><trt:ProfileToken>main</trt:ProfileToken></trt:GetSnapshotUri>`, map[string]string{"MediaUri/Uri": "https://" + hostname + ":8443/api/v1/snapshot.jpg"}},
		{`<tev:GetServiceCapabilities/>`, nil},
	} {
		a := f.call(f.key(), tc.body)
		action := tc.body[strings.Index(tc.body, ":")+1 : strings.IndexAny(tc.body, "/>")]
		if a.status != http.StatusOK || a.body == nil || a.body.Name.Local != action+"Response" {
			t.Errorf("%s: %d %s", action, a.status, a.raw)
			continue
		}
		for path, want := range tc.want {
			if got := a.body.text(strings.Split(path, "/")...); got != want {
				t.Errorf("%s: %s = %q, want %q", action, path, got, want)
			}
		}
	}
	// A client that sends every service's action to one address (some
	// do) gets the same answers.
	if a := f.post(MediaPath, f.envelope(f.key(), `<tds:GetDeviceInformation/>`)); a.status != http.StatusOK {
		t.Errorf("GetDeviceInformation at the media service: %d", a.status)
	}
}

// TestMediaSynchronizationPoint: SetSynchronizationPoint on the media
// service asks the source for a keyframe; one that cannot be asked (a
// passthrough source without keyframe_command) is ter:ActionNotSupported,
// and an unknown profile ter:NoProfile.
func TestMediaSynchronizationPoint(t *testing.T) {
	asked, can := 0, true
	f := newFixture(t, func(o *Options) { o.Keyframe = func() bool { asked++; return can } })
	const body = `<trt:SetSynchronizationPoint><trt:ProfileToken>main</trt:ProfileToken></trt:SetSynchronizationPoint>`
	if a := f.call(f.key(), body); a.status != http.StatusOK || a.body == nil || a.body.Name.Local != "SetSynchronizationPointResponse" || asked != 1 {
		t.Fatalf("asked %d times: %d %s", asked, a.status, a.raw)
	}
	can = false
	if a := f.call(f.key(), body); a.status == http.StatusOK || !slices.Contains(a.faultCodes(), "ter:ActionNotSupported") || asked != 2 {
		t.Fatalf("a source that cannot be asked: %d %v", a.status, a.faultCodes())
	}
	if a := f.call(f.key(), strings.Replace(body, ">main<", ">other<", 1)); !slices.Contains(a.faultCodes(), "ter:NoProfile") || asked != 2 {
		t.Fatalf("unknown profile: %d %v (asked %d)", a.status, a.faultCodes(), asked)
	}
	if a := newFixture(t, nil).call(f.key(), body); !slices.Contains(a.faultCodes(), "ter:ActionNotSupported") {
		t.Fatalf("no Keyframe: %d %v", a.status, a.faultCodes())
	}
}

// TestPreAuthCalls: GetSystemDateAndTime (and GetCapabilities,
// GetServices, GetHostname: Profile S's PRE_AUTH class) answer without a
// token, or with a bad one (libonvif sends an empty user name before it
// logs in); the others need one.
func TestPreAuthCalls(t *testing.T) {
	f := newFixture(t, nil)
	for _, body := range []string{`<tds:GetSystemDateAndTime/>`, `<tds:GetCapabilities/>`, `<tds:GetServices><tds:IncludeCapability>true</tds:IncludeCapability></tds:GetServices>`, `<tds:GetHostname/>`} {
		if a := f.call(nil, body); a.status != http.StatusOK {
			t.Errorf("%s without a token: %d %s", body, a.status, a.raw)
		}
		if a := f.call(&creds{user: "", secret: ""}, body); a.status != http.StatusOK {
			t.Errorf("%s with an empty user name: %d %s", body, a.status, a.raw)
		}
	}
	for _, body := range []string{`<tds:GetDeviceInformation/>`, `<tds:GetScopes/>`, `<tds:GetNetworkInterfaces/>`,
		`<trt:GetProfiles/>`, `<trt:GetStreamUri><trt:ProfileToken>main</trt:ProfileToken></trt:GetStreamUri>`,
		`<trt:GetSnapshotUri><trt:ProfileToken>main</trt:ProfileToken></trt:GetSnapshotUri>`,
		`<trt:SetSynchronizationPoint><trt:ProfileToken>main</trt:ProfileToken></trt:SetSynchronizationPoint>`,
		`<tev:CreatePullPointSubscription/>`} {
		a := f.call(nil, body)
		if a.status != http.StatusBadRequest || !slices.Equal(a.faultCodes(), []string{"env:Sender", "ter:NotAuthorized"}) {
			t.Errorf("%s without a token: %d %v", body, a.status, a.faultCodes())
		}
	}
}

// TestRefusedTokens: a wrong secret, an unknown key, PasswordText, a
// malformed token, a replayed nonce, a created time too old or too far
// ahead, and a revoked key are refused alike (ter:NotAuthorized).
func TestRefusedTokens(t *testing.T) {
	f := newFixture(t, nil)
	const body = `<tds:GetDeviceInformation/>`
	nonce := []byte("0123456789abcdef")
	first := &creds{user: testKey, secret: testSecret, nonce: nonce, created: f.clock()}
	if a := f.call(first, body); a.status != http.StatusOK {
		t.Fatalf("the key: %d %s", a.status, a.raw)
	}
	// The same token again at once from the same address: libonvif's
	// clock-made nonce; taken (the grace, TestNonceCache).
	if a := f.call(first, `<tds:GetCapabilities/>`); a.status != http.StatusOK {
		t.Fatalf("the same token at once: %d %s", a.status, a.raw)
	}
	f.advance(2 * time.Second)
	for _, tc := range []struct {
		name string
		c    *creds
		env  string
	}{
		{"wrong secret", &creds{user: testKey, secret: "wrong"}, ""},
		{"unknown key", &creds{user: "0000000000000000", secret: testSecret}, ""},
		{"PasswordText", &creds{user: testKey, secret: testSecret, text: true}, ""},
		{"replayed nonce", first, ""},
		{"stale created", &creds{user: testKey, secret: testSecret, created: f.clock().Add(-6 * time.Minute)}, ""},
		{"created ahead", &creds{user: testKey, secret: testSecret, created: f.clock().Add(6 * time.Minute)}, ""},
		{"short nonce", &creds{user: testKey, secret: testSecret, nonce: []byte("1234")}, ""},
		{"no created", nil, f.envelope(f.key(), body)},
	} {
		env := tc.env
		if tc.c != nil {
			env = f.envelope(tc.c, body)
		} else {
			env = strings.Replace(env, "<wsu:Created>", "<wsu:X>", 1)
			env = strings.Replace(env, "</wsu:Created>", "</wsu:X>", 1)
		}
		a := f.post(DevicePath, env)
		if a.status != http.StatusBadRequest || !slices.Equal(a.faultCodes(), []string{"env:Sender", "ter:NotAuthorized"}) {
			t.Errorf("%s: %d %v %s", tc.name, a.status, a.faultCodes(), a.raw)
		}
	}
	// The same request again, seconds later and still in the window: a
	// replay of a captured message.
	replay := f.envelope(f.key(), body)
	if a := f.post(DevicePath, replay); a.status != http.StatusOK {
		t.Fatalf("first: %d", a.status)
	}
	f.advance(1500 * time.Millisecond)
	if a := f.post(DevicePath, replay); a.status != http.StatusBadRequest {
		t.Errorf("the same message again: %d, want 400", a.status)
	}
	// A created time a few minutes off camd's clock (a client that did
	// not correct by GetSystemDateAndTime) is still taken.
	if a := f.call(&creds{user: testKey, secret: testSecret, created: f.clock().Add(-4 * time.Minute)}, body); a.status != http.StatusOK {
		t.Errorf("4 minutes off: %d", a.status)
	}
	f.mu.Lock()
	f.revoked = true
	f.mu.Unlock()
	if a := f.call(f.key(), body); a.status != http.StatusBadRequest {
		t.Errorf("revoked key: %d, want 400", a.status)
	}
}

// TestNonceCache: when the cache is full the oldest nonce goes and the
// floor rises to its created time: that nonce, replayed, is stale. A
// token (nonce and created time) comes again only from its address
// within a second of its first use; the nonce with another created time
// is another token.
func TestNonceCache(t *testing.T) {
	c := newNonces(3)
	base := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
	oldest := base.Add(-5 * time.Minute)
	now := base
	for i := range 3 {
		if err := c.use([]byte{byte(i)}, base.Add(time.Duration(i)*time.Second), oldest, now, "10.0.0.2"); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name    string
		created time.Time
		at      time.Duration
		addr    string
		want    error
	}{
		{"same address at once", base, 0, "10.0.0.2", nil},
		{"same address within the second", base, time.Second, "10.0.0.2", nil},
		{"another address", base, 0, "10.0.0.3", ErrReplayed},
		{"later", base, 1001 * time.Millisecond, "10.0.0.2", ErrReplayed},
		// A new created time needs the secret: another token.
		{"another created time", base.Add(time.Millisecond), 0, "10.0.0.3", nil},
	} {
		if err := c.use([]byte{0}, tc.created, oldest, now.Add(tc.at), tc.addr); err != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	// The cache was full: the oldest token went, and the floor rose to
	// its created time.
	if err := c.use([]byte{0}, base, oldest, now, "10.0.0.2"); err != ErrStale {
		t.Errorf("the forgotten nonce again: %v, want ErrStale", err)
	}
	if err := c.use([]byte{1}, base.Add(time.Second), oldest, now.Add(2*time.Second), "10.0.0.2"); err != ErrReplayed {
		t.Errorf("a kept nonce again: %v, want ErrReplayed", err)
	}
	if len(c.seen) > 3 {
		t.Errorf("%d nonces kept, max 3", len(c.seen))
	}
	// Entries past the window are dropped before anything is evicted.
	if err := c.use([]byte{9}, base.Add(10*time.Minute), base.Add(5*time.Minute), now, "10.0.0.2"); err != nil || len(c.seen) != 1 {
		t.Errorf("after the window: %v, %d kept", err, len(c.seen))
	}
}

// TestFaults: unknown actions, SOAP 1.1, malformed XML, a DTD, too large
// a body, another method, a wrong profile, a multicast stream, and
// RTSP off each get their fault or status.
func TestFaults(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.MaxBody = 4096 })
	for _, tc := range []struct {
		name   string
		env    string
		status int
		codes  []string
	}{
		{"unknown action", f.envelope(f.key(), `<tds:SetSystemFactoryDefault><tds:FactoryDefault>Hard</tds:FactoryDefault></tds:SetSystemFactoryDefault>`), 500, []string{"env:Receiver", "ter:ActionNotSupported"}},
		{"unknown namespace", f.envelope(f.key(), `<x:GetProfiles xmlns:x="urn:other"/>`), 500, []string{"env:Receiver", "ter:ActionNotSupported"}},
		{"SOAP 1.1", `<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><GetSystemDateAndTime xmlns="` + nsDevice + `"/></s:Body></s:Envelope>`, 400, []string{"env:Sender", "ter:WrongSOAPVersion"}},
		{"not XML", `{"json": true}`, 400, []string{"env:Sender", "ter:WellFormed"}},
		{"unclosed", `<s:Envelope xmlns:s="` + nsSOAP + `"><s:Body><tds:GetHostname xmlns:tds="` + nsDevice + `">`, 400, []string{"env:Sender", "ter:WellFormed"}},
		{"two actions", f.envelope(f.key(), `<tds:GetHostname/><tds:GetScopes/>`), 400, []string{"env:Sender", "ter:WellFormed"}},
		{"no body", `<s:Envelope xmlns:s="` + nsSOAP + `"/>`, 400, []string{"env:Sender", "ter:WellFormed"}},
		{"DTD", `<!DOCTYPE s [<!ENTITY x "y">]><s:Envelope xmlns:s="` + nsSOAP + `"><s:Body/></s:Envelope>`, 400, []string{"env:Sender", "ter:WellFormed"}},
		{"too deep", f.envelope(nil, `<tds:GetSystemDateAndTime>`+strings.Repeat("<a>", 40)+strings.Repeat("</a>", 40)+`</tds:GetSystemDateAndTime>`), 400, []string{"env:Sender", "ter:WellFormed"}},
		{"too large", f.envelope(nil, `<tds:GetSystemDateAndTime>`+strings.Repeat("x", 5000)+`</tds:GetSystemDateAndTime>`), 413, []string{"env:Sender"}},
		{"no such profile", f.envelope(f.key(), `<trt:GetStreamUri><trt:ProfileToken>other</trt:ProfileToken></trt:GetStreamUri>`), 400, []string{"env:Sender", "ter:InvalidArgVal", "ter:NoProfile"}},
		{"multicast", f.envelope(f.key(), `<trt:GetStreamUri><trt:StreamSetup><tt:Stream>RTP-Multicast</tt:Stream></trt:StreamSetup><trt:ProfileToken>main</trt:ProfileToken></trt:GetStreamUri>`), 400, []string{"env:Sender", "ter:InvalidArgVal", "ter:InvalidStreamSetup"}},
		{"no such category", f.envelope(f.key(), `<tds:GetCapabilities><tds:Category>PTZ</tds:Category></tds:GetCapabilities>`), 500, []string{"env:Receiver", "ter:ActionNotSupported", "ter:NoSuchService"}},
	} {
		a := f.post(DevicePath, tc.env)
		if a.status != tc.status || !slices.Equal(a.faultCodes(), tc.codes) {
			t.Errorf("%s: %d %v, want %d %v (%s)", tc.name, a.status, a.faultCodes(), tc.status, tc.codes, a.raw)
		}
	}
	if resp, err := http.Get(f.ts.URL + DevicePath); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: %v %v", resp.StatusCode, err)
	}
	if a := f.post("/other", f.envelope(nil, `<tds:GetSystemDateAndTime/>`)); a.status != http.StatusNotFound {
		t.Errorf("another path: %d", a.status)
	}

	off := newFixture(t, func(o *Options) { o.RTSPPort = 0 })
	a := off.call(off.key(), `<trt:GetStreamUri><trt:ProfileToken>main</trt:ProfileToken></trt:GetStreamUri>`)
	if a.status != 500 || !slices.Equal(a.faultCodes(), []string{"env:Receiver", "ter:ActionNotSupported", "ter:NoStreaming"}) || !strings.Contains(a.raw, "rtsp.listen") {
		t.Errorf("RTSP off: %d %v %s", a.status, a.faultCodes(), a.raw)
	}
}
