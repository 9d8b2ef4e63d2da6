package api

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/camd-project/camd/device/events"
	"github.com/camd-project/camd/storage/eventlog"
)

// fakeEvents notes what it was asked, and answers from its events.
type fakeEvents struct {
	mu     sync.Mutex
	asked  eventlog.Query
	events []eventlog.Event
	// block, if set, holds each Query until it is closed; waiting
	// hears of each Query held.
	block   chan struct{}
	waiting chan struct{}
}

func (f *fakeEvents) Query(q eventlog.Query) ([]eventlog.Event, error) {
	f.mu.Lock()
	block := f.block
	f.mu.Unlock()
	if block != nil {
		select {
		case f.waiting <- struct{}{}:
		default:
		}
		<-block
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = q
	if slices.Contains(q.Kinds, "broken") {
		return nil, errDisk
	}
	out := []eventlog.Event{}
	for _, e := range f.events {
		if e.ID > q.After && (q.Before == 0 || e.ID < q.Before) && eventlog.KindMatches(q.Kinds, e.Kind) && (q.Keep == nil || q.Keep(e)) {
			out = append(out, e)
		}
	}
	if !q.Oldest {
		slices.Reverse(out)
	}
	if q.Limit > 0 && len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out, nil
}

func (f *fakeEvents) LastID() (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.events) == 0 {
		return 0, nil
	}
	return f.events[len(f.events)-1].ID, nil
}

// add stores an event and publishes it, as the log and the bus do.
func (f *fakeEvents) add(bus *events.Bus, kind string) eventlog.Event {
	f.mu.Lock()
	e := eventlog.Event{ID: uint64(len(f.events) + 1), Kind: kind, Time: time.Now()}
	f.events = append(f.events, e)
	f.mu.Unlock()
	bus.Publish(e)
	return e
}

func (f *fakeEvents) query() eventlog.Query {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.asked
}

func TestEventsList(t *testing.T) {
	f := &fakeEvents{}
	for _, k := range []string{"motion", "user.revoked", "recording.paused", "settings.changed"} {
		f.add(events.New(events.Options{}), k)
	}
	routes := (&Events{Log: f}).routes()
	var list []eventlog.Event
	answer(t, do(t, routes, request{method: "GET", path: "/api/v1/events?kind=motion&from=2025-06-01T08:00:00Z&to=now&limit=5000", token: "viewer-token"}), 200, &list)
	q := f.query()
	if len(list) != 1 || !slices.Equal(q.Kinds, []string{"motion"}) || q.Limit != 1000 || q.Oldest ||
		!q.From.Equal(time.Date(2025, 6, 1, 8, 0, 0, 0, time.UTC)) || time.Since(q.To) > time.Minute {
		t.Fatalf("asked %+v, got %+v", q, list)
	}
	// No range: all of it, newest first; a viewer sees only media events.
	answer(t, do(t, routes, request{method: "GET", path: "/api/v1/events?limit=-3", token: "viewer-token"}), 200, &list)
	if q := f.query(); !q.From.IsZero() || !q.To.IsZero() || q.Limit != DefaultEventPage || len(list) != 2 || list[0].ID != 3 || list[1].ID != 1 {
		t.Fatalf("asked %+v, got %+v", q, list)
	}
	// An owner sees every event.
	answer(t, do(t, routes, request{method: "GET", path: "/api/v1/events", token: "owner-token"}), 200, &list)
	if len(list) != 4 {
		t.Fatalf("the owner got %+v", list)
	}
	// Pages oldest first from an ID, types by family, a list of types.
	answer(t, do(t, routes, request{method: "GET", path: "/api/v1/events?after=1&type=recording.*,user.*&type=settings.changed", token: "owner-token"}), 200, &list)
	if q := f.query(); !q.Oldest || q.After != 1 || !slices.Equal(q.Kinds, []string{"recording.*", "user.*", "settings.changed"}) || len(list) != 3 || list[0].ID != 2 {
		t.Fatalf("asked %+v, got %+v", q, list)
	}
	answer(t, do(t, routes, request{method: "GET", path: "/api/v1/events?after=0", token: "owner-token"}), 200, &list)
	if q := f.query(); !q.Oldest || len(list) != 4 || list[0].ID != 1 {
		t.Fatalf("after=0: asked %+v, got %+v", q, list)
	}
	// A full page links to the next one, in its direction.
	for _, c := range []struct{ path, next string }{
		{"/api/v1/events?after=0&limit=2&type=motion,recording.*", "/api/v1/events?after=3&limit=2&type=motion%2Crecording.%2A"},
		{"/api/v1/events?limit=3", "/api/v1/events?before=2&limit=3"},
		{"/api/v1/events?before=4&limit=2", "/api/v1/events?before=2&limit=2"},
		{"/api/v1/events?after=2&limit=3", ""},
	} {
		resp := do(t, routes, request{method: "GET", path: c.path, token: "owner-token"})
		link := resp.Header().Get("Link")
		if want := "<" + c.next + `>; rel="next"`; (c.next == "" && link != "") || (c.next != "" && link != want) {
			t.Errorf("%s: Link %q, want %q", c.path, link, c.next)
		}
	}
	answer(t, do(t, routes, request{method: "GET", path: "/api/v1/events?before=3", token: "owner-token"}), 200, &list)
	if q := f.query(); q.Oldest || q.Before != 3 || len(list) != 2 || list[0].ID != 2 {
		t.Fatalf("before=3: asked %+v, got %+v", q, list)
	}
	for _, bad := range []string{"from=yesterday", "to=yesterday", "after=-1", "before=x", "after=1e3"} {
		answer(t, do(t, routes, request{method: "GET", path: "/api/v1/events?" + bad, token: "viewer-token"}), 400, nil)
	}
	answer(t, do(t, routes, request{method: "GET", path: "/api/v1/events?kind=broken", token: "viewer-token"}), 500, nil)
	answer(t, do(t, (&Events{}).routes(), request{method: "GET", path: "/api/v1/events", token: "viewer-token"}), 503, nil)
	answer(t, do(t, (&Events{}).routes(), request{method: "GET", path: "/api/v1/events/stream", token: "viewer-token"}), 503, nil)
}

// sseStream reads a server-sent event stream.
type sseStream struct {
	resp *http.Response
	*events.Reader
}

func openStream(t *testing.T, srv *httptest.Server, token string, header map[string]string, query string) *sseStream {
	t.Helper()
	req, _ := http.NewRequest("GET", srv.URL+"/api/v1/events/stream"+query, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return &sseStream{resp: resp, Reader: events.NewReader(resp.Body)}
}

// events reads n events, skipping comments.
func (s *sseStream) events(t *testing.T, n int) []uint64 {
	t.Helper()
	var ids []uint64
	for len(ids) < n {
		f, err := s.Next()
		if err != nil {
			t.Fatalf("after %v: %v", ids, err)
		}
		if !f.IsEvent() {
			continue
		}
		var e eventlog.Event
		if f.Event != "" || json.Unmarshal([]byte(f.Data), &e) != nil || strconv.FormatUint(e.ID, 10) != f.ID {
			t.Fatalf("after %v: frame %+v", ids, f)
		}
		ids = append(ids, e.ID)
	}
	return ids
}

// end reads up to the frame that ends the stream and its end.
func (s *sseStream) end(t *testing.T) events.Frame {
	t.Helper()
	for {
		f, err := s.Next()
		if err != nil {
			t.Fatalf("the stream ended with %v before saying why", err)
		}
		if f.Event == "" {
			continue
		}
		if _, err := s.Next(); err != io.EOF {
			t.Fatalf("after %+v: %v, want the end", f, err)
		}
		return f
	}
}

func streamServer(t *testing.T, a *Events) *httptest.Server {
	t.Helper()
	srv := httptest.NewTLSServer(serve(tokens, discard, a.routes(), nil))
	t.Cleanup(srv.Close)
	return srv
}

// The stream: live events as a viewer and as an owner may see them,
// what a client missed when it comes back with Last-Event-ID (the header
// or the query), bad IDs refused.
func TestEventStream(t *testing.T) {
	f := &fakeEvents{}
	bus := events.New(events.Options{})
	srv := streamServer(t, &Events{Log: f, Bus: bus})
	f.add(bus, "motion") // 1: before anyone subscribed

	viewer := openStream(t, srv, "viewer-token", nil, "")
	owner := openStream(t, srv, "owner-token", nil, "")
	for _, s := range []*sseStream{viewer, owner} {
		if s.resp.StatusCode != 200 || s.resp.Header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("stream: %d %v", s.resp.StatusCode, s.resp.Header)
		}
		// The first comment says the stream is open: the subscription is
		// in place.
		if first, err := s.Next(); err != nil || first.Comment != "camd events" {
			t.Fatalf("first frame %+v %v", first, err)
		}
	}
	for _, k := range []string{"motion", "user.revoked", "recording.paused", "settings.changed", "motion.end"} {
		f.add(bus, k) // 2 to 6
	}
	if got := viewer.events(t, 3); !slices.Equal(got, []uint64{2, 4, 6}) {
		t.Fatalf("the viewer got %v", got)
	}
	if got := owner.events(t, 5); !slices.Equal(got, []uint64{2, 3, 4, 5, 6}) {
		t.Fatalf("the owner got %v", got)
	}

	// Back after 2: the missed events from the log, then live ones.
	back := openStream(t, srv, "owner-token", map[string]string{"Last-Event-ID": "2"}, "?last_event_id=1")
	f.add(bus, "motion") // 7
	if got := back.events(t, 5); !slices.Equal(got, []uint64{3, 4, 5, 6, 7}) {
		t.Fatalf("resumed after 2: %v", got)
	}
	query := openStream(t, srv, "viewer-token", nil, "?last_event_id=3&type=motion*")
	f.add(bus, "motion") // 8
	if got := query.events(t, 3); !slices.Equal(got, []uint64{6, 7, 8}) {
		t.Fatalf("resumed after 3, motion only: %v", got)
	}
	for _, bad := range []string{"x", "-1", "1.5"} {
		if s := openStream(t, srv, "owner-token", map[string]string{"Last-Event-ID": bad}, ""); s.resp.StatusCode != 400 {
			t.Errorf("Last-Event-ID %q: %d", bad, s.resp.StatusCode)
		}
	}
	if s := openStream(t, srv, "", nil, ""); s.resp.StatusCode != 401 {
		t.Errorf("no credential: %d", s.resp.StatusCode)
	}

	// Ended by camd: the reason, then the end.
	if n := bus.EndUser(theViewer.ID, "access ended"); n != 2 {
		t.Fatalf("ended %d streams of the viewer", n)
	}
	for _, s := range []*sseStream{viewer, query} {
		if e := s.end(t); e.Event != "closed" || !strings.Contains(e.Data, "access ended") {
			t.Fatalf("end: %+v", e)
		}
	}
	bus.Close()
	if e := owner.end(t); e.Event != "closed" || !strings.Contains(e.Data, "closed") {
		t.Fatalf("end at close: %+v", e)
	}
	if s := openStream(t, srv, "owner-token", nil, ""); s.resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("after close: %d", s.resp.StatusCode)
	}
}

// A silent stream sends heartbeats.
func TestEventStreamHeartbeat(t *testing.T) {
	srv := streamServer(t, &Events{Log: &fakeEvents{}, Bus: events.New(events.Options{}), Heartbeat: 10 * time.Millisecond})
	s := openStream(t, srv, "viewer-token", nil, "")
	for n := 0; n < 3; {
		f, err := s.Next()
		if err != nil {
			t.Fatal(err)
		}
		switch f.Comment {
		case "heartbeat":
			n++
		case "camd events":
		default:
			t.Fatalf("frame %+v", f)
		}
	}
}

// A subscriber that falls too far behind is cut off with the reason
// after what it was sent, and comes back for the rest.
func TestEventStreamOverflow(t *testing.T) {
	f := &fakeEvents{}
	bus := events.New(events.Options{Buffer: 2})
	srv := streamServer(t, &Events{Log: f, Bus: bus})
	f.add(bus, "motion")
	f.add(bus, "motion")
	block := make(chan struct{})
	f.mu.Lock()
	f.block, f.waiting = block, make(chan struct{}, 1) // reads of the log wait
	f.mu.Unlock()
	s := openStream(t, srv, "viewer-token", map[string]string{"Last-Event-ID": "0"}, "")
	if first, err := s.Next(); err != nil || first.Comment != "camd events" {
		t.Fatalf("first frame %+v %v", first, err)
	}
	<-f.waiting // the stream reads the log
	// While the stream reads the log, three live events: one too many.
	for range 3 {
		f.add(bus, "motion")
	}
	close(block)
	// The event being read when it fell behind, then the reason, before
	// the rest.
	if got := s.events(t, 1); !slices.Equal(got, []uint64{1}) {
		t.Fatalf("before the overflow: %v", got)
	}
	if e := s.end(t); e.Event != "overflow" || !strings.Contains(e.Data, "behind") {
		t.Fatalf("end: %+v", e)
	}
	back := openStream(t, srv, "viewer-token", map[string]string{"Last-Event-ID": "1"}, "")
	if got := back.events(t, 4); !slices.Equal(got, []uint64{2, 3, 4, 5}) {
		t.Fatalf("back: %v", got)
	}
}

// A client that goes away ends its subscription.
func TestEventStreamClientLeaves(t *testing.T) {
	bus := events.New(events.Options{})
	srv := streamServer(t, &Events{Log: &fakeEvents{}, Bus: bus})
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/api/v1/events/stream", nil)
	req.Header.Set("Authorization", "Bearer viewer-token")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	bufio.NewReader(resp.Body).ReadString('\n')
	if n := len(bus.Subscriptions()); n != 1 {
		t.Fatalf("%d subscriptions", n)
	}
	cancel()
	resp.Body.Close()
	for deadline := time.Now().Add(10 * time.Second); len(bus.Subscriptions()) != 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the subscription outlived its client")
		}
	}
}

// deadlineWriter is a ResponseWriter that notes, for each write, whether
// a write deadline was set since the write before it.
type deadlineWriter struct {
	h       http.Header
	armed   bool  // a deadline was set since the last write
	stale   []int // the writes made without one
	writes  int   // events written
	written chan int
}

func (w *deadlineWriter) Header() http.Header { return w.h }
func (w *deadlineWriter) WriteHeader(int)     {}
func (w *deadlineWriter) Flush()              {}
func (w *deadlineWriter) SetWriteDeadline(time.Time) error {
	w.armed = true
	return nil
}
func (w *deadlineWriter) Write(b []byte) (int, error) {
	if !w.armed {
		w.stale = append(w.stale, w.writes)
	}
	w.armed = false
	if strings.HasPrefix(string(b), "id: ") {
		w.writes++
		w.written <- w.writes
	}
	return len(b), nil
}

// Every write of a stream has its own deadline: a stream that always has
// another event waiting (here, 500 missed events read from the log) is
// not cut off WriteTimeout after the first of them while its client
// reads.
func TestEventStreamWriteDeadlineEachWrite(t *testing.T) {
	f := &fakeEvents{}
	bus := events.New(events.Options{})
	for range 500 {
		f.add(bus, "motion")
	}
	h := serve(tokens, discard, (&Events{Log: f, Bus: bus}).routes(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	req := httptest.NewRequestWithContext(ctx, "GET", "/api/v1/events/stream", nil)
	req.Header.Set("Authorization", "Bearer viewer-token")
	req.Header.Set("Last-Event-ID", "0")
	w := &deadlineWriter{h: http.Header{}, written: make(chan int, 500)}
	done := make(chan struct{})
	go func() { h.ServeHTTP(w, req); close(done) }()
	for n := 0; n < 500; n = <-w.written {
	}
	cancel()
	<-done
	if len(w.stale) > 0 {
		t.Fatalf("%d writes without a deadline of their own, the first after event %d", len(w.stale), w.stale[0])
	}
}
