package webhooks

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/camd-project/camd/device/events"
	"github.com/camd-project/camd/internal/testenv"
	"github.com/camd-project/camd/storage"
	"github.com/camd-project/camd/storage/eventlog"
)

// verify is the receiver's side of Standard Webhooks, written apart
// from Sign: the key is the secret's base64 after "whsec_"; the header
// holds space-separated "v1,<base64>" signatures; any one matching
// passes; the timestamp must be within tolerance of now.
func verify(secret string, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return errors.New("missing headers")
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return err
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("timestamp %d too far from now", sec)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return err
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + ts + "." + string(body)))
	want := m.Sum(nil)
	for _, s := range strings.Fields(sigs) {
		v, b64, ok := strings.Cut(s, ",")
		if !ok || v != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err == nil && subtle.ConstantTimeCompare(got, want) == 1 {
			return nil
		}
	}
	return errors.New("no signature matches")
}

// The example of the Standard Webhooks specification (its libraries'
// "sign function works" test): Sign makes it, verify accepts it.
func TestSignStandardWebhooksExample(t *testing.T) {
	const (
		secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
		id     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
		ts     = 1614265330
		body   = `{"test": 2432232314}`
		want   = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	)
	got, err := Sign(secret, id, ts, []byte(body))
	if err != nil || got != want {
		t.Fatalf("Sign = %q, %v; want %q", got, err, want)
	}
	h := http.Header{}
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", strconv.Itoa(ts))
	h.Set("webhook-signature", "v1,bm90IGl0 "+want)
	if err := verify(secret, h, []byte(body), time.Unix(ts, 0), 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := verify(secret, h, []byte(body+" "), time.Unix(ts, 0), 5*time.Minute); err == nil {
		t.Fatal("a changed body verified")
	}
	if _, err := Sign("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", id, ts, nil); !errors.Is(err, ErrSecret) {
		t.Fatalf("a secret without whsec_: %v", err)
	}
}

// env is a catalog with an event log and its bus.
type env struct {
	cat *storage.Catalog
	log *eventlog.Log
	bus *events.Bus
}

func newEnv(t *testing.T, dir string) *env { return newEnvTB(t, dir) }

func newEnvTB(t testing.TB, dir string) *env {
	t.Helper()
	cat, err := storage.OpenCatalog(filepath.Join(dir, "catalog.db"), storage.CatalogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bus := events.New(events.Options{})
	e := &env{cat: cat, bus: bus, log: eventlog.New(cat, eventlog.Options{Notify: bus.Publish})}
	t.Cleanup(func() { bus.Close(); cat.Close() })
	return e
}

func (e *env) add(t testing.TB, kind string) uint64 {
	t.Helper()
	id, err := e.log.Add(eventlog.Event{Kind: kind, Message: kind})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// receiver is a webhook endpoint that verifies every message and
// answers what status says.
type receiver struct {
	t      testing.TB
	secret atomic.Value // string
	status atomic.Int32
	mu     sync.Mutex
	seen   map[string]int // webhook-id → times received
	got    chan message
	bad    atomic.Int32
}

type message struct {
	ID   string
	Body struct {
		Type      string          `json:"type"`
		Timestamp time.Time       `json:"timestamp"`
		Data      eventlog.Event  `json:"data"`
		Raw       json.RawMessage `json:"-"`
	}
	At time.Time
}

func newReceiver(t testing.TB) (*receiver, *httptest.Server) {
	r := &receiver{t: t, seen: map[string]int{}, got: make(chan message, 4096)}
	r.status.Store(200)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return r, srv
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	status := int(r.status.Load())
	if err := verify(r.secret.Load().(string), req.Header, body, time.Now(), 5*time.Minute); err != nil {
		r.bad.Add(1)
		r.t.Errorf("receiver: %v", err)
		status = 400
	}
	if status/100 == 2 {
		var m message
		m.ID, m.At = req.Header.Get("webhook-id"), time.Now()
		if err := json.Unmarshal(body, &m.Body); err != nil {
			r.t.Errorf("receiver: body %s: %v", body, err)
		}
		r.mu.Lock()
		r.seen[m.ID]++
		first := r.seen[m.ID] == 1
		r.mu.Unlock()
		if first {
			r.got <- m
		}
	}
	w.WriteHeader(status)
}

func (r *receiver) next(t testing.TB) message {
	t.Helper()
	select {
	case m := <-r.got:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery")
		return message{}
	}
}

func newSink(t *testing.T, e *env, opts Options) *Sink { return newSinkTB(t, e, opts) }

func newSinkTB(t testing.TB, e *env, opts Options) *Sink {
	t.Helper()
	opts.Catalog, opts.Bus, opts.History = e.cat, e.bus, e.log
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func run(t testing.TB, s *Sink) context.CancelFunc {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return cancel
}

func TestDeliversSignedEventsOfItsTypes(t *testing.T) {
	e := newEnv(t, t.TempDir())
	r, srv := newReceiver(t)
	before := e.add(t, events.Motion) // made before the hook: not sent
	s := newSink(t, e, Options{})
	h, err := s.Add(srv.URL+"/hook?token=x", []string{"motion", "recording.*"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h.Secret, "whsec_") {
		t.Fatalf("secret %q", h.Secret)
	}
	r.secret.Store(h.Secret)
	run(t, s)
	e.add(t, events.SettingsChanged) // not among its types
	id := e.add(t, events.Motion)
	e.add(t, events.RecordingPaused)
	// Sent several at once: in any order (the event IDs order them).
	got := map[string]message{}
	for range 2 {
		m := r.next(t)
		got[m.Body.Type] = m
	}
	if m := got[events.Motion]; m.Body.Data.ID != id || m.Body.Data.ID == before || m.ID != fmt.Sprintf("msg_%d_%s", id, h.ID) {
		t.Fatalf("motion delivery %+v", m)
	}
	if _, ok := got[events.RecordingPaused]; !ok {
		t.Fatalf("deliveries %+v", got)
	}
	list, _ := s.List()
	if len(list) != 1 || list[0].Secret != "" {
		t.Fatalf("List shows %+v", list)
	}
	testenv.Eventually(t, "two deliveries logged", func() bool { l, _ := s.Deliveries(h.ID); return len(l) == 2 })
	l, _ := s.Deliveries(h.ID)
	if l[0].Outcome != "delivered" || l[0].Status != 200 || l[1].Outcome != "delivered" {
		t.Fatalf("log %+v", l)
	}
}

func TestRetriesAfterFailureThenDelivers(t *testing.T) {
	e := newEnv(t, t.TempDir())
	r, srv := newReceiver(t)
	var calls atomic.Int32
	fails := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if calls.Add(1) <= 3 {
			w.WriteHeader(500)
			return
		}
		r.ServeHTTP(w, req)
	})
	srv.Config.Handler = fails
	s := newSink(t, e, Options{RetryBase: time.Millisecond, RetryMax: 4 * time.Millisecond})
	h, _ := s.Add(srv.URL, nil)
	r.secret.Store(h.Secret)
	run(t, s)
	id := e.add(t, events.Motion)
	m := r.next(t)
	if m.Body.Data.ID != id {
		t.Fatalf("got %+v", m)
	}
	testenv.Eventually(t, "an empty queue", func() bool { return s.Queued() == 0 })
	l, _ := s.Deliveries(h.ID)
	if len(l) != 4 || l[0].Outcome != "delivered" || l[0].Attempt != 4 || l[3].Outcome != "retry" || l[3].Status != 500 || l[3].Next.IsZero() {
		t.Fatalf("log %+v", l)
	}
	list, _ := s.List()
	if !list[0].FailingSince.IsZero() || list[0].LastSuccess.IsZero() {
		t.Fatalf("hook after success %+v", list[0])
	}
	if st := s.Stats(); st != (Stats{Delivered: 1, Failed: 3}) {
		t.Fatalf("stats %+v", st)
	}
}

func TestBackoffGrowsWithJitter(t *testing.T) {
	s := &Sink{opts: Options{RetryBase: time.Second, RetryMax: time.Minute}}
	for n, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 4: 8 * time.Second, 10: time.Minute, 100: time.Minute} {
		seen := map[time.Duration]bool{}
		for range 50 {
			d := s.backoff(n)
			if d < want/2 || d > want {
				t.Fatalf("backoff(%d) = %v, want in [%v, %v]", n, d, want/2, want)
			}
			seen[d] = true
		}
		if len(seen) < 2 {
			t.Fatalf("backoff(%d) has no jitter", n)
		}
	}
}

func TestFailingForADayDisables(t *testing.T) {
	e := newEnv(t, t.TempDir())
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		w.WriteHeader(503)
	}))
	defer srv.Close()
	var mu sync.Mutex
	now := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	told := make(chan eventlog.Event, 1)
	s := newSink(t, e, Options{Now: clock, RetryBase: time.Nanosecond, RetryMax: time.Nanosecond, Event: func(ev eventlog.Event) { told <- ev }})
	h, _ := s.Add(srv.URL+"/x?token=secret", nil)
	run(t, s)
	e.add(t, events.Motion)
	e.add(t, events.Motion)
	testenv.Eventually(t, "two hits at the receiver", func() bool { return hits.Load() >= 2 })
	mu.Lock()
	now = now.Add(24 * time.Hour)
	mu.Unlock()
	var ev eventlog.Event
	select {
	case ev = <-told:
	case <-time.After(10 * time.Second):
		t.Fatal("not disabled")
	}
	if ev.Kind != events.WebhookDisabled || ev.Data["webhook"] != h.ID || strings.Contains(ev.Data["url"], "secret") || strings.Contains(ev.Message, "secret") {
		t.Fatalf("event %+v", ev)
	}
	testenv.Eventually(t, "an empty queue", func() bool { return s.Queued() == 0 })
	list, _ := s.List()
	if list[0].Disabled.IsZero() || list[0].DisabledReason == "" {
		t.Fatalf("hook %+v", list[0])
	}
	// Both deliveries were given up, each counted once.
	if st := s.Stats(); st.Dropped != 2 || st.Delivered != 0 || st.Queued != 0 {
		t.Fatalf("stats %+v", st)
	}
	// A disabled hook queues nothing.
	m := &events.Message{ID: e.add(t, events.Motion), Kind: events.Motion, JSON: []byte(`{}`)}
	if err := s.enqueue(context.Background(), m); err != nil || s.Queued() != 0 {
		t.Fatalf("a disabled hook queued: %v, %d", err, s.Queued())
	}
}

func TestRemoveDropsQueueAndLog(t *testing.T) {
	e := newEnv(t, t.TempDir())
	s := newSink(t, e, Options{})
	h, _ := s.Add("https://192.0.2.1/never", nil) // not running: stays queued
	m := &events.Message{ID: e.add(t, events.Motion), Kind: events.Motion, JSON: []byte(`{}`)}
	if err := s.enqueue(context.Background(), m); err != nil || s.Queued() != 1 {
		t.Fatalf("enqueue: %v, %d queued", err, s.Queued())
	}
	if err := s.Remove(h.ID); err != nil || s.Queued() != 0 {
		t.Fatalf("Remove: %v, %d queued", err, s.Queued())
	}
	if st := s.Stats(); st != (Stats{Dropped: 1}) {
		t.Fatalf("stats %+v", st)
	}
	if err := s.Remove(h.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Remove again: %v", err)
	}
	if _, err := s.Deliveries(h.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Deliveries: %v", err)
	}
}

func TestAddRefuses(t *testing.T) {
	e := newEnv(t, t.TempDir())
	s := newSink(t, e, Options{})
	for _, u := range []string{"ftp://x/", "https://", "file:///etc/passwd", "https://user:pw@host/", "javascript:alert(1)"} {
		if _, err := s.Add(u, nil); !errors.Is(err, ErrURL) {
			t.Errorf("Add(%q): %v", u, err)
		}
	}
	if _, err := s.Add("https://h/", []string{"nope"}); !errors.Is(err, ErrType) {
		t.Errorf("unknown type: %v", err)
	}
	for range MaxHooks {
		if _, err := s.Add("https://h/", []string{"call.*"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Add("https://h/", nil); !errors.Is(err, ErrTooMany) {
		t.Errorf("one too many: %v", err)
	}
}

func TestTestSendsAndLogs(t *testing.T) {
	e := newEnv(t, t.TempDir())
	r, srv := newReceiver(t)
	s := newSink(t, e, Options{})
	h, _ := s.Add(srv.URL, nil)
	r.secret.Store(h.Secret)
	a, err := s.Test(context.Background(), h.ID)
	if err != nil || a.Status != 200 || a.Outcome != "test" {
		t.Fatalf("Test = %+v, %v", a, err)
	}
	if m := r.next(t); m.Body.Type != "webhook.test" {
		t.Fatalf("got %+v", m)
	}
	if _, err := s.Test(context.Background(), "wh_none"); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
}

// A full queue waits: the events it has not queued stay in the log and
// come once there is room; none is lost.
func TestBoundedQueueWaitsAndLosesNothing(t *testing.T) {
	e := newEnv(t, t.TempDir())
	r, srv := newReceiver(t)
	gate := make(chan struct{})
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		<-gate
		r.ServeHTTP(w, req)
	})
	s := newSink(t, e, Options{MaxQueue: 5, Workers: 1})
	h, _ := s.Add(srv.URL, nil)
	r.secret.Store(h.Secret)
	run(t, s)
	for range 20 {
		e.add(t, events.Motion)
	}
	testenv.Eventually(t, "five queued", func() bool { return s.Queued() == 5 })
	close(gate)
	for range 20 {
		r.next(t)
	}
}

// BenchmarkEventToWebhook: from storing an event to the receiver on
// loopback having verified it (p50, p99).
func BenchmarkEventToWebhook(b *testing.B) {
	e := newEnvTB(b, b.TempDir())
	r, srv := newReceiver(b)
	s := newSinkTB(b, e, Options{})
	h, _ := s.Add(srv.URL, nil)
	r.secret.Store(h.Secret)
	run(b, s)
	var lat []time.Duration
	for b.Loop() {
		start := time.Now()
		e.add(b, events.Motion)
		m := r.next(b)
		lat = append(lat, m.At.Sub(start))
	}
	s2 := slices.Sorted(slices.Values(lat))
	b.ReportMetric(float64(s2[len(s2)/2].Microseconds())/1000, "p50_ms")
	b.ReportMetric(float64(s2[len(s2)*99/100].Microseconds())/1000, "p99_ms")
}
