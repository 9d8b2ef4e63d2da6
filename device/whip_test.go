package device

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/camd-project/camd/device/api"
	"github.com/camd-project/camd/device/events"
	"github.com/camd-project/camd/internal/testenv"
	"github.com/camd-project/camd/media/whep/whiptest"
	"github.com/camd-project/camd/storage/eventlog"
)

const whipToken = "whip-token-0d1e5c"

// whipStatus reads GET /api/v1/whip as the owner.
func whipStatus(t *testing.T, d *Daemon, token string) api.WHIPStatus {
	t.Helper()
	code, b := call(t, d, "GET", "/api/v1/whip", token, nil)
	var st api.WHIPStatus
	if code != http.StatusOK || json.Unmarshal(b, &st) != nil {
		t.Fatalf("GET /api/v1/whip: %d %s", code, b)
	}
	return st
}

// whipEvents returns the whip.* events in the log.
func whipEvents(t *testing.T, d *Daemon) []eventlog.Event {
	t.Helper()
	list, err := d.events.log.Query(eventlog.Query{Kinds: []string{"whip.*"}, Oldest: true})
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// The owner turns the publish on with the settings: camd publishes the
// live stream to the SFU from a keyframe; a wrong token is refused once
// and said in the status and an event, with no attempt after it; the
// right one publishes again and the event log hears it is back; turning
// it off deletes the session. The token shows in no answer and no log
// line, and a viewer can neither set nor read it.
func TestWHIPPublishFollowsTheSettings(t *testing.T) {
	sfu := whiptest.New(whipToken)
	defer sfu.Close()
	log := &testenv.Buffer{}
	d := runningLogged(t, log, func(c *Config) {
		c.Source = "synthetic"
		c.Video.Width, c.Video.Height, c.Video.FPS = 320, 240, 15
	})
	d.whip.minBackoff = 50 * time.Millisecond
	ownerToken := owner(t, d)
	viewerToken := viewer(t, d, ownerToken)
	var answers strings.Builder
	patch := func(token, body string) int {
		code, out := patchSettings(t, d, token, "application/json", body)
		b, _ := json.Marshal(out)
		answers.Write(b)
		return code
	}
	if st := whipStatus(t, d, ownerToken); st.State != "off" {
		t.Fatalf("before: %+v", st)
	}

	// A viewer can neither set nor read it.
	if code := patch(viewerToken, `{"whip_url": "`+sfu.URL+`", "whip_token": "`+whipToken+`"}`); code != http.StatusForbidden {
		t.Fatalf("a viewer's PATCH: %d", code)
	}
	for _, path := range []string{"/api/v1/settings", "/api/v1/whip"} {
		if code, _ := call(t, d, "GET", path, viewerToken, nil); code != http.StatusForbidden {
			t.Fatalf("a viewer's GET %s: %d", path, code)
		}
	}
	if len(sfu.Methods()) != 0 {
		t.Fatal("a viewer's PATCH reached the SFU")
	}

	// A wrong token: refused, once.
	if code := patch(ownerToken, `{"whip_url": "`+sfu.URL+`", "whip_token": "wrong-`+whipToken+`"}`); code != http.StatusOK {
		t.Fatalf("PATCH: %d", code)
	}
	testenv.Eventually(t, "the wrong token refused", func() bool { return whipStatus(t, d, ownerToken).State == "refused" })
	if st := whipStatus(t, d, ownerToken); !strings.Contains(st.Error, "refused the token") || st.Endpoint+"/whip" != sfu.URL {
		t.Errorf("refused: %+v", st)
	}
	testenv.Eventually(t, "whip.failed (refused)", func() bool {
		ev := whipEvents(t, d)
		return len(ev) == 1 && ev[0].Kind == events.WHIPFailed && ev[0].Data["state"] == "refused"
	})

	// The right token: published from a keyframe.
	if code := patch(ownerToken, `{"whip_token": "`+whipToken+`"}`); code != http.StatusOK {
		t.Fatalf("PATCH: %d", code)
	}
	testenv.Eventually(t, "30 frames at the SFU", func() bool { n, _ := sfu.Frames(1); return n >= 30 })
	if _, key := sfu.Frames(1); !key {
		t.Error("the SFU's first frame is not a keyframe")
	}
	if methods := strings.Join(sfu.Methods(), " "); methods != "OPTIONS OPTIONS POST" {
		t.Errorf("requests %q: the refused token was tried again", methods)
	}
	if st := whipStatus(t, d, ownerToken); st.State != "publishing" || st.Frames == 0 || st.Connected == nil {
		t.Errorf("publishing: %+v", st)
	}
	// It holds one viewer slot.
	if held := d.whep.Stats().Held; held != 1 {
		t.Errorf("the publish holds %d viewer slots, want 1", held)
	}
	// The SFU restarts: the publish comes back, and the log hears of it.
	sfu.Drop()
	testenv.Eventually(t, "a second session", func() bool { n, _ := sfu.Frames(2); return n >= 10 })
	testenv.Eventually(t, "whip.recovered", func() bool {
		ev := whipEvents(t, d)
		return len(ev) == 3 && ev[1].Kind == events.WHIPFailed && ev[2].Kind == events.WHIPRecovered
	})

	// The owner reads the settings: the URL, and that a token is set.
	code, b := call(t, d, "GET", "/api/v1/settings", ownerToken, nil)
	answers.Write(b)
	var shown map[string]any
	json.Unmarshal(b, &shown)
	if code != http.StatusOK || shown["whip_url"] != sfu.URL || shown["whip_token_set"] != true {
		t.Errorf("GET /api/v1/settings: %d %s", code, b)
	}

	// Off: the session is deleted.
	if code := patch(ownerToken, `{"whip_url": ""}`); code != http.StatusOK {
		t.Fatalf("PATCH: %d", code)
	}
	// (The first, which the SFU dropped, was deleted when camd saw it
	// break.)
	testenv.Eventually(t, "the session deleted", func() bool { return slices.Equal(sfu.Deleted(), []int{1, 2}) })
	testenv.Eventually(t, "the publish off", func() bool { return whipStatus(t, d, ownerToken).State == "off" })
	if held := d.whep.Stats().Held; held != 0 {
		t.Errorf("after turning it off, %d viewer slots held", held)
	}
	for _, s := range []string{answers.String(), log.String()} {
		if strings.Contains(s, whipToken) {
			t.Errorf("the token shows:\n%s", s)
		}
	}
}

// TestCORSOriginsAreASetting: the owner's cors_allowed_origins replaces
// the configuration's at once, and null brings it back.
func TestCORSOriginsAreASetting(t *testing.T) {
	d := running(t, func(c *Config) { c.CORS.AllowedOrigins = []string{"https://config.example"} })
	token := owner(t, d)
	allowed := func(origin string) bool {
		req, _ := http.NewRequest("OPTIONS", "https://"+d.Addr().String()+"/api/v1/whep", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		resp, err := testClient().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.Header.Get("Access-Control-Allow-Origin") == origin
	}
	if !allowed("https://config.example") || allowed("https://ha.example:8123") {
		t.Fatal("the configuration's origins do not apply")
	}
	if code, out := patchSettings(t, d, token, "", `{"cors_allowed_origins": ["https://ha.example:8123"]}`); code != http.StatusOK {
		t.Fatalf("PATCH: %d %v", code, out)
	}
	if allowed("https://config.example") || !allowed("https://ha.example:8123") {
		t.Fatal("the setting does not apply at once")
	}
	if code, out := patchSettings(t, d, token, "", `{"cors_allowed_origins": ["https://ha.example:8123/"]}`); code != http.StatusUnprocessableEntity || out["field"] != "cors_allowed_origins" {
		t.Fatalf("a path: %d %v", code, out)
	}
	if code, _ := patchSettings(t, d, token, "", `{"cors_allowed_origins": null}`); code != http.StatusOK || !allowed("https://config.example") {
		t.Fatal("null does not bring the configuration's back")
	}
}
