package api

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/camd-project/camd/media/export"
	"github.com/camd-project/camd/media/motion"
	"github.com/camd-project/camd/media/recorder"
	"github.com/camd-project/camd/media/whep"
	"github.com/camd-project/camd/storage/recordings"
)

// fakeRecordings is the recording side of the daemon: the store, the
// recorder, motion detection, the snapshot takers and the playbacks.
type fakeRecordings struct {
	timeline func(from, to time.Time) (recordings.Timeline, error)
	export   func(from, to time.Time) (*export.File, error)
	deleted  []time.Time
	triggers []string
	raw      bool
	stills   bool
	play     func(*export.File) (whep.Feed, error)
}

func (f *fakeRecordings) Timeline(stream uint32, from, to time.Time) (recordings.Timeline, error) {
	if stream != 1 {
		return recordings.Timeline{}, fmt.Errorf("stream %d", stream)
	}
	return f.timeline(from, to)
}
func (f *fakeRecordings) Export(stream uint32, from, to time.Time) (*export.File, error) {
	return f.export(from, to)
}
func (f *fakeRecordings) Stats() recordings.Stats {
	return recordings.Stats{Volumes: 3, Bytes: 1 << 20}
}
func (f *fakeRecordings) Delete(before time.Time) (int, error) {
	f.deleted = append(f.deleted, before)
	return 2, nil
}
func (f *fakeRecordings) Trigger(cause string, hold time.Duration) {
	f.triggers = append(f.triggers, fmt.Sprint(cause, " ", hold))
}
func (f *fakeRecordings) Raw() bool       { return f.raw }
func (f *fakeRecordings) Available() bool { return f.stills }
func (f *fakeRecordings) Play(x *export.File) (whep.Feed, error) {
	return f.play(x)
}

type fakeRecorder struct{ *fakeRecordings }

func (f fakeRecorder) Stats() recorder.Stats {
	return recorder.Stats{Mode: recorder.Continuous, Recording: true, Fragments: uint64(len(f.triggers))}
}

type fakeMotion struct{}

func (fakeMotion) Stats() motion.Stats { return motion.Stats{Sensitivity: 7} }

// fakeWHEP answers every WHEP request with 201, 204 or 200 and notes the
// feed it was given.
type fakeWHEP struct{ feed *whep.Feed }

func (f *fakeWHEP) HandleOffer(w http.ResponseWriter, r *http.Request) { w.WriteHeader(201) }

// HandleOptions answers as whep.Server does: the ICE servers only for a
// paired user.
func (f *fakeWHEP) HandleOptions(w http.ResponseWriter, r *http.Request) {
	if UserFrom(r.Context()).ID != "" {
		w.Header().Set("Link", `<stun:stun.example.net>; rel="ice-server"`)
	}
	w.WriteHeader(204)
}
func (f *fakeWHEP) HandleFeedOffer(w http.ResponseWriter, r *http.Request, feed whep.Feed) {
	f.feed = &feed
	w.WriteHeader(201)
}
func (f *fakeWHEP) HandlePatch(w http.ResponseWriter, r *http.Request)  { w.WriteHeader(204) }
func (f *fakeWHEP) HandleDelete(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) }

func recordingsAPI(f *fakeRecordings, wh *fakeWHEP) []Route {
	return (&Recordings{Stream: 1, Store: f, Exports: f, Recorder: fakeRecorder{f}, Motion: fakeMotion{},
		Stills: f, Player: f, WHEP: wh}).routes()
}

func TestTimeline(t *testing.T) {
	start := time.Date(2025, 6, 1, 8, 0, 0, 0, time.UTC)
	var asked [2]time.Time
	f := &fakeRecordings{raw: true, stills: true, timeline: func(from, to time.Time) (recordings.Timeline, error) {
		asked = [2]time.Time{from, to}
		if to.Before(from) {
			return recordings.Timeline{}, recordings.ErrRange
		}
		return recordings.Timeline{From: from, To: to, Spans: []recordings.Span{{Start: start, End: start.Add(90 * time.Second)}},
			Recorded: 90 * time.Second}, nil
	}}
	routes := recordingsAPI(f, &fakeWHEP{})

	var tl TimelineAnswer
	w := do(t, routes, request{method: "GET", path: "/api/v1/recordings?from=2025-06-01T07:00:00Z&to=2025-06-01T09:00:00Z", token: "viewer-token"})
	answer(t, w, 200, &tl)
	if tl.Recorded != 90 || len(tl.Spans) != 1 || !tl.From.Equal(start.Add(-time.Hour)) {
		t.Fatalf("timeline: %s", w.Body)
	}
	st := tl.Status
	if st.Volumes != 3 || st.Recorder.Mode != recorder.Continuous || st.Motion.Sensitivity != 7 || !st.Raw || !st.Snapshots {
		t.Fatalf("status: %s", w.Body)
	}
	// The status is flat: the store's counters beside the recorder's.
	for _, key := range []string{`"volumes": 3`, `"recorder": {`, `"motion": {`, `"raw_pictures": true`, `"snapshots": true`} {
		if !strings.Contains(w.Body.String(), key) {
			t.Errorf("timeline lacks %s: %s", key, w.Body)
		}
	}
	// The default range is the last hour.
	answer(t, do(t, routes, request{method: "GET", path: "/api/v1/recordings", token: "viewer-token"}), 200, nil)
	if d := asked[1].Sub(asked[0]); d != time.Hour || time.Since(asked[1]) > time.Minute {
		t.Fatalf("default range %v to %v", asked[0], asked[1])
	}
	answer(t, do(t, routes, request{method: "GET", path: "/api/v1/recordings?from=yesterday", token: "viewer-token"}), 400, nil)
	answer(t, do(t, routes, request{method: "GET", path: "/api/v1/recordings?from=now&to=-1h", token: "viewer-token"}), 400, nil)

	var status RecordingStatus
	answer(t, do(t, routes, request{method: "GET", path: "/api/v1/recordings/status", token: "viewer-token"}), 200, &status)
	if status.Volumes != 3 || !status.Recorder.Recording {
		t.Fatalf("status: %+v", status)
	}
}

func TestExportErrors(t *testing.T) {
	// The hour of from picks the store's answer.
	fail := map[int]error{2: recordings.ErrRange, 3: recordings.ErrTooLong, 4: recordings.ErrNoRecording, 5: errDisk, 6: recordings.ErrBusy}
	var played int
	f := &fakeRecordings{
		export: func(from, to time.Time) (*export.File, error) { return nil, fail[from.Hour()] },
		play:   func(*export.File) (whep.Feed, error) { played++; return whep.Feed{}, nil },
	}
	wh := &fakeWHEP{}
	routes := recordingsAPI(f, wh)
	for _, c := range []struct {
		query string
		code  int
	}{
		{"from=2025-06-01T02:00:00Z&to=2025-06-01T02:30:00Z", 400},
		{"from=2025-06-01T03:00:00Z&to=2025-06-01T03:30:00Z", 400},
		{"from=2025-06-01T04:00:00Z&to=2025-06-01T04:30:00Z", 404},
		{"from=2025-06-01T05:00:00Z&to=2025-06-01T05:30:00Z", 500},
		{"from=2025-06-01T06:00:00Z&to=2025-06-01T06:30:00Z", 429},
		{"from=yesterday", 400},
		{"to=later", 400},
		{"from=2025-06-01T02:00:00Z&to=soon", 400},
	} {
		for _, method := range []string{"GET /api/v1/recordings/export", "POST /api/v1/recordings/whep"} {
			m, path, _ := strings.Cut(method, " ")
			w := do(t, routes, request{method: m, path: path + "?" + c.query, token: "viewer-token"})
			if w.Code != c.code {
				t.Errorf("%s?%s: %d %s, want %d", method, c.query, w.Code, w.Body, c.code)
			}
			if busy := w.Header().Get("Retry-After") != ""; busy != (c.code == 429) {
				t.Errorf("%s?%s: Retry-After %q", method, c.query, w.Header().Get("Retry-After"))
			}
			errorOf(t, w)
		}
	}
	// A range that cannot be opened is never played nor offered.
	if played != 0 || wh.feed != nil {
		t.Fatalf("played %d, offered %v", played, wh.feed)
	}
	// The playback's sessions are WHEP's.
	answer(t, do(t, routes, request{method: "PATCH", path: "/api/v1/recordings/whep/abc", token: "viewer-token"}), 204, nil)
	answer(t, do(t, routes, request{method: "DELETE", path: "/api/v1/recordings/whep/abc", token: "viewer-token"}), 200, nil)
}

func TestDeleteRecordings(t *testing.T) {
	f := &fakeRecordings{}
	routes := recordingsAPI(f, &fakeWHEP{})
	var out map[string]int
	answer(t, do(t, routes, request{method: "DELETE", path: "/api/v1/recordings?all=1", token: "owner-token"}), 200, &out)
	answer(t, do(t, routes, request{method: "DELETE", path: "/api/v1/recordings?before=2025-06-01T08:00:00Z", token: "owner-token"}), 200, &out)
	answer(t, do(t, routes, request{method: "DELETE", path: "/api/v1/recordings", token: "owner-token"}), 400, nil)
	answer(t, do(t, routes, request{method: "DELETE", path: "/api/v1/recordings?before=soon", token: "owner-token"}), 400, nil)
	if out["volumes_deleted"] != 2 || len(f.deleted) != 2 || !f.deleted[0].IsZero() ||
		!f.deleted[1].Equal(time.Date(2025, 6, 1, 8, 0, 0, 0, time.UTC)) {
		t.Fatalf("deleted %v, answered %v", f.deleted, out)
	}
}

func TestMotionTrigger(t *testing.T) {
	f := &fakeRecordings{}
	routes := recordingsAPI(f, &fakeWHEP{})
	var st recorder.Stats
	answer(t, do(t, routes, request{method: "POST", path: "/api/v1/motion", token: "owner-token", body: `{}`}), 200, &st)
	answer(t, do(t, routes, request{method: "POST", path: "/api/v1/motion", token: "owner-token", body: `{"cause": "alarm", "seconds": 2.5}`}), 200, &st)
	for _, body := range []string{`{"seconds": -1}`, `{"seconds": 3601}`, `{"cause": "` + strings.Repeat("c", 33) + `"}`, `{"why": 1}`} {
		answer(t, do(t, routes, request{method: "POST", path: "/api/v1/motion", token: "owner-token", body: body}), 400, nil)
	}
	if strings.Join(f.triggers, ",") != "api 1s,alarm 2.5s" || st.Fragments != 2 {
		t.Fatalf("triggers %q, stats %+v", f.triggers, st)
	}
}

func TestPlaybackWhenShuttingDown(t *testing.T) {
	f := &fakeRecordings{
		export: func(from, to time.Time) (*export.File, error) {
			return &export.File{Start: from, End: to}, nil
		},
		play: func(*export.File) (whep.Feed, error) {
			return whep.Feed{}, errors.New("recordings: shutting down")
		},
	}
	wh := &fakeWHEP{}
	w := do(t, recordingsAPI(f, wh), request{method: "POST", path: "/api/v1/recordings/whep?from=2025-06-01T08:00:00Z&to=2025-06-01T08:01:00Z", token: "viewer-token"})
	if w.Code != 503 || !strings.Contains(errorOf(t, w), "shutting down") || wh.feed != nil {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	// The range's times are told before the offer is answered.
	if w.Header().Get("X-Camd-Start") == "" || w.Header().Get("X-Camd-End") == "" {
		t.Fatalf("headers %v", w.Header())
	}

	f.play = func(*export.File) (whep.Feed, error) { return whep.Feed{Start: func() {}}, nil }
	answer(t, do(t, recordingsAPI(f, wh), request{method: "POST", path: "/api/v1/recordings/whep?from=2025-06-01T08:00:00Z&to=2025-06-01T08:01:00Z", token: "viewer-token"}), 201, nil)
	if wh.feed == nil || wh.feed.Start == nil {
		t.Fatal("the playback's feed was not offered")
	}
}

// TestRelativeRangesRedirect: an export or playback of a relative range
// (-2m, now) redirects to the absolute range, so that range requests and
// resumes read the same bytes; the redirect keeps the other parameters.
func TestRelativeRangesRedirect(t *testing.T) {
	var exported [][2]time.Time
	f := &fakeRecordings{export: func(from, to time.Time) (*export.File, error) {
		exported = append(exported, [2]time.Time{from, to})
		return nil, recordings.ErrNoRecording
	}}
	routes := recordingsAPI(f, &fakeWHEP{})
	for _, c := range []struct{ method, path string }{
		{"GET", "/api/v1/recordings/export?from=-2m&to=now&download=1"},
		{"GET", "/api/v1/recordings/export?from=-2m"},
		{"GET", "/api/v1/recordings/export?from=2025-06-01T08:00:00Z"},
		{"POST", "/api/v1/recordings/whep?from=-2m&to=-1m"},
	} {
		before := time.Now()
		w := do(t, routes, request{method: c.method, path: c.path, token: "viewer-token"})
		if w.Code != http.StatusTemporaryRedirect {
			t.Fatalf("%s %s: %d, want 307", c.method, c.path, w.Code)
		}
		loc, err := url.Parse(w.Header().Get("Location"))
		if err != nil || loc.Path != strings.Split(c.path, "?")[0] {
			t.Fatalf("%s: Location %q", c.path, w.Header().Get("Location"))
		}
		from, err1 := time.Parse(time.RFC3339Nano, loc.Query().Get("from"))
		to, err2 := time.Parse(time.RFC3339Nano, loc.Query().Get("to"))
		if err1 != nil || err2 != nil || !to.After(from) || to.Before(before.Add(-time.Minute-time.Second)) {
			t.Fatalf("%s: redirected to %s", c.path, loc)
		}
		if strings.Contains(c.path, "download") && loc.Query().Get("download") != "1" {
			t.Fatalf("%s: redirect lost download: %s", c.path, loc)
		}
		// The absolute range is opened as it is.
		if w := do(t, routes, request{method: c.method, path: loc.RequestURI(), token: "viewer-token"}); w.Code != http.StatusNotFound {
			t.Fatalf("%s: %d, want the store's answer", loc, w.Code)
		}
	}
	if len(exported) != 4 {
		t.Fatalf("%d exports opened; relative ranges must be redirected before", len(exported))
	}

	// A playback's offer is read before the redirect is answered: a
	// connection closed with it unread would be reset under a client
	// still writing it (ci35: "write: broken pipe" on a loaded machine).
	offer := strings.NewReader(strings.Repeat("a=candidate:1 1 udp 1 127.0.0.1 9 typ host\r\n", 200))
	req := httptest.NewRequest("POST", "/api/v1/recordings/whep?from=-2m&to=now", offer)
	req.Header.Set("Authorization", "Bearer viewer-token")
	w := httptest.NewRecorder()
	serve(tokens, discard, routes, nil).ServeHTTP(w, req)
	if w.Code != http.StatusTemporaryRedirect || offer.Len() != 0 {
		t.Fatalf("redirect %d with %d bytes of the offer unread", w.Code, offer.Len())
	}
}
