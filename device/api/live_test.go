package api

import (
	"testing"
	"testing/fstest"
	"time"

	"github.com/camd-project/camd/media"
	"github.com/camd-project/camd/media/whep"
)

type fakeViewers whep.Stats

func (f fakeViewers) Stats() whep.Stats { return whep.Stats(f) }

type fakeStream media.Stats

func (f fakeStream) Stats() media.Stats { return media.Stats(f) }

func TestLive(t *testing.T) {
	viewers := fakeViewers{Served: 3, Refused: 1, LatencyP50: 1500 * time.Microsecond, Sessions: []whep.SessionStats{
		{State: "connected", FirstFrame: 80 * time.Millisecond, Frames: 900, BitrateEstimate: 2_000_000, Created: time.Now().Add(-time.Minute)},
	}}
	routes := (&Live{WHEP: &fakeWHEP{}, Viewers: viewers, Stream: fakeStream{Source: "synthetic", Published: 1000, TargetBitrate: 1_500_000}}).routes()
	var st struct {
		Source    string  `json:"source"`
		Published uint64  `json:"frames_published"`
		Target    int     `json:"target_bitrate"`
		Served    uint64  `json:"viewers_served"`
		Refused   uint64  `json:"viewers_refused"`
		P50       float64 `json:"latency_p50_ms"`
		Viewers   []struct {
			State      string  `json:"state"`
			FirstFrame float64 `json:"first_frame_ms"`
			Estimate   int     `json:"estimate_bps"`
			Age        float64 `json:"age_s"`
		} `json:"viewers"`
	}
	answer(t, do(t, routes, request{method: "GET", path: "/api/v1/stats", token: "viewer-token"}), 200, &st)
	if st.Source != "synthetic" || st.Published != 1000 || st.Target != 1_500_000 || st.Served != 3 || st.Refused != 1 || st.P50 != 1.5 {
		t.Fatalf("stats: %+v", st)
	}
	if len(st.Viewers) != 1 || st.Viewers[0].FirstFrame != 80 || st.Viewers[0].Estimate != 2_000_000 || st.Viewers[0].Age < 60 {
		t.Fatalf("viewers: %+v", st.Viewers)
	}
	// WHEP's own answers pass through.
	answer(t, do(t, routes, request{method: "POST", path: "/api/v1/whep", token: "viewer-token"}), 201, nil)
	answer(t, do(t, routes, request{method: "PATCH", path: "/api/v1/whep/x", token: "viewer-token"}), 204, nil)
	answer(t, do(t, routes, request{method: "DELETE", path: "/api/v1/whep/x", token: "viewer-token"}), 200, nil)
}

func TestWeb(t *testing.T) {
	files := fstest.MapFS{
		"index.html": {Data: []byte("<!doctype html><title>camd</title>")},
		"app.js":     {Data: []byte("// app")},
	}
	routes := (&Web{Files: files, Version: "v1.2.3"}).routes()
	var h map[string]string
	answer(t, do(t, routes, request{method: "GET", path: "/health"}), 200, &h)
	if h["status"] != "ok" || h["version"] != "v1.2.3" {
		t.Fatalf("health: %v", h)
	}
	w := do(t, routes, request{method: "GET", path: "/"})
	if w.Code != 200 || w.Body.String() != "<!doctype html><title>camd</title>" {
		t.Fatalf("page: %d %q", w.Code, w.Body)
	}
	answer(t, do(t, routes, request{method: "GET", path: "/app.js"}), 200, nil)
	answer(t, do(t, routes, request{method: "GET", path: "/secret.txt"}), 404, nil)
}

type fakeEnder map[string]bool

func (f fakeEnder) EndSession(id string) error {
	if !f[id] {
		return whep.ErrNoSession
	}
	delete(f, id)
	return nil
}

// The owner lists every session with whose it is, and ends any of them.
func TestLiveSessions(t *testing.T) {
	viewers := fakeViewers{Sessions: []whep.SessionStats{
		{ID: "s1", User: "u-owner", Owner: true, State: "connected", Frames: 10},
		{ID: "s2", User: "u-viewer", Playback: true, State: "connected"},
	}}
	ender := fakeEnder{"s1": true, "s2": true}
	routes := (&Live{WHEP: &fakeWHEP{}, Viewers: viewers, Sessions: ender, Stream: fakeStream{}}).routes()
	var list []Session
	answer(t, do(t, routes, request{method: "GET", path: "/api/v1/sessions", token: "owner-token"}), 200, &list)
	if len(list) != 2 || list[0] != (Session{ID: "s1", User: "u-owner", Owner: true, State: "connected", Frames: 10}) ||
		list[1].User != "u-viewer" || !list[1].Playback {
		t.Fatalf("sessions: %+v", list)
	}
	answer(t, do(t, routes, request{method: "DELETE", path: "/api/v1/sessions/s2", token: "owner-token"}), 204, nil)
	answer(t, do(t, routes, request{method: "DELETE", path: "/api/v1/sessions/s2", token: "owner-token"}), 404, nil)
	if ender["s2"] || !ender["s1"] {
		t.Fatalf("ended %v", ender)
	}
}

type fakePublish WHIPStatus

func (f fakePublish) Status() WHIPStatus { return WHIPStatus(f) }

// TestWHIPStatus: the owner reads the publish's state; "off" without
// one; a viewer gets 403.
func TestWHIPStatus(t *testing.T) {
	next := time.Now().Add(4 * time.Second).UTC()
	for _, tc := range []struct {
		name string
		pub  whipPublish
		want WHIPStatus
	}{
		{"off", nil, WHIPStatus{State: "off"}},
		{"retrying", fakePublish{State: "retrying", Endpoint: "https://sfu.example", Error: "whep: 503", Failures: 2, NextAttempt: &next},
			WHIPStatus{State: "retrying", Endpoint: "https://sfu.example", Error: "whep: 503", Failures: 2, NextAttempt: &next}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			routes := (&Live{WHEP: &fakeWHEP{}, Publish: tc.pub}).routes()
			var got WHIPStatus
			answer(t, do(t, routes, request{method: "GET", path: "/api/v1/whip", token: "owner-token"}), 200, &got)
			if got.State != tc.want.State || got.Endpoint != tc.want.Endpoint || got.Error != tc.want.Error || got.Failures != tc.want.Failures ||
				(tc.want.NextAttempt != nil && (got.NextAttempt == nil || !got.NextAttempt.Equal(next))) {
				t.Errorf("%+v, want %+v", got, tc.want)
			}
			for token, code := range map[string]int{"viewer-token": 403, "revoked-token": 401, "": 401} {
				if rec := do(t, routes, request{method: "GET", path: "/api/v1/whip", token: token}); rec.Code != code {
					t.Errorf("token %q: %d, want %d", token, rec.Code, code)
				}
			}
		})
	}
}
