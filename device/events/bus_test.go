package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/camd-project/camd/storage"
	"github.com/camd-project/camd/storage/eventlog"
)

// held is a log whose stored events reach the bus only when the test
// says: so a test can subscribe while events are stored but not yet
// published, the seam the bus must not tear.
type held struct {
	log     *eventlog.Log
	bus     *Bus
	pending []eventlog.Event
}

func newHeld(t *testing.T, opts Options) *held {
	t.Helper()
	cat, err := storage.OpenCatalog(filepath.Join(t.TempDir(), "catalog.db"), storage.CatalogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	h := &held{bus: New(opts)}
	h.log = eventlog.New(cat, eventlog.Options{Camera: "cam", Notify: func(e eventlog.Event) { h.pending = append(h.pending, e) }})
	return h
}

// add stores n events of kind, unpublished.
func (h *held) add(t *testing.T, kind string, n int) {
	t.Helper()
	for range n {
		if _, err := h.log.Add(eventlog.Event{Kind: kind}); err != nil {
			t.Fatal(err)
		}
	}
}

// publish publishes what was stored.
func (h *held) publish() {
	for _, e := range h.pending {
		h.bus.Publish(e)
	}
	h.pending = nil
}

// drain reads what s has now, until it would wait.
func drain(t *testing.T, s *Subscription) []uint64 {
	t.Helper()
	var got []uint64
	for {
		m, err := s.Next(context.Background(), closedIdle)
		if err != nil {
			t.Fatalf("after %v: %v", got, err)
		}
		if m == nil {
			return got
		}
		var e eventlog.Event
		if err := json.Unmarshal(m.JSON, &e); err != nil || e.ID != m.ID || e.Kind != m.Kind || e.Camera != "cam" ||
			string(m.SSE) != fmt.Sprintf("id: %d\ndata: %s\n\n", m.ID, m.JSON) {
			t.Fatalf("message %d %q: %s (%v)", m.ID, m.Kind, m.JSON, err)
		}
		got = append(got, m.ID)
	}
}

// closedIdle makes Next return at once when nothing is waiting.
var closedIdle = func() <-chan time.Time {
	c := make(chan time.Time)
	close(c)
	return c
}()

func seq(from, to uint64) []uint64 {
	var s []uint64
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

// A subscriber that resumes gets every event after the one it saw,
// once, in order, wherever it resumes and whatever was published,
// stored but not yet published, or published while it read the history
// (pages of 3 events, so page boundaries fall everywhere too).
func TestResumeAtEverySeam(t *testing.T) {
	const published, unpublished, later = 5, 3, 4
	for after := range uint64(published + unpublished + 1) {
		for readFirst := range 4 { // missed events read before the rest is published
			t.Run(fmt.Sprintf("after=%d/read=%d", after, readFirst), func(t *testing.T) {
				h := newHeld(t, Options{HistoryPage: 3})
				h.add(t, "motion", published)
				h.publish()
				h.add(t, "motion", unpublished) // stored, not yet published
				s, err := h.bus.Subscribe(h.log, Subscriber{User: "u", Resume: true, After: after})
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				var got []uint64
				for range readFirst {
					m, err := s.Next(context.Background(), closedIdle)
					if err != nil {
						t.Fatal(err)
					}
					if m != nil {
						got = append(got, m.ID)
					}
				}
				h.publish()
				h.add(t, "motion", later)
				h.publish()
				got = append(got, drain(t, s)...)
				if want := seq(after+1, published+unpublished+later); !slices.Equal(got, want) {
					t.Fatalf("got %v, want %v", got, want)
				}
			})
		}
	}
}

// Without Resume a subscriber gets only what is published after it
// subscribed (including what was stored just before).
func TestLiveOnly(t *testing.T) {
	h := newHeld(t, Options{})
	h.add(t, "motion", 2)
	h.publish()
	h.add(t, "motion", 1) // stored before Subscribe, published after
	s, err := h.bus.Subscribe(h.log, Subscriber{User: "u"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	h.publish()
	h.add(t, "motion", 2)
	h.publish()
	if got := drain(t, s); !slices.Equal(got, []uint64{3, 4, 5}) {
		t.Fatalf("got %v", got)
	}
}

// A subscriber that does not read is cut off once Buffer events are
// waiting for it, with the reason, before what is queued; the publisher
// never waits, and the subscriber that keeps up loses nothing. The one
// cut off resumes from the log where it stopped.
func TestSlowSubscriberIsCutOff(t *testing.T) {
	h := newHeld(t, Options{Buffer: 4})
	slow, _ := h.bus.Subscribe(h.log, Subscriber{User: "slow"})
	fast, _ := h.bus.Subscribe(h.log, Subscriber{User: "fast"})
	defer fast.Close()
	var fastGot []uint64
	h.add(t, "motion", 2)
	h.publish()
	first, err := slow.Next(context.Background(), closedIdle)
	if err != nil || first.ID != 1 {
		t.Fatalf("first: %+v %v", first, err)
	}
	for range 10 {
		h.add(t, "motion", 1)
		h.publish() // would block forever if Publish waited for slow
		fastGot = append(fastGot, drain(t, fast)...)
	}
	if want := seq(1, 12); !slices.Equal(fastGot, want) {
		t.Fatalf("the subscriber that kept up got %v", fastGot)
	}
	if _, err := slow.Next(context.Background(), closedIdle); !errors.Is(err, ErrOverflow) || !errors.Is(slow.Err(), ErrOverflow) {
		t.Fatalf("slow subscriber: %v", err)
	}
	select {
	case <-slow.Done():
	default:
		t.Fatal("Done is not closed")
	}
	if st := h.bus.Stats(); st.Subscribers != 1 || st.CutOff != 1 || st.Published != 12 || st.MaxQueued != 0 {
		t.Fatalf("stats %+v, want 1 subscriber left, 1 cut off, 12 published, none queued", st)
	}
	again, _ := h.bus.Subscribe(h.log, Subscriber{User: "slow", Resume: true, After: first.ID})
	defer again.Close()
	if got := drain(t, again); !slices.Equal(got, seq(2, 12)) {
		t.Fatalf("resumed: %v", got)
	}
}

// Viewers get only media events, live and from the history; owners get
// every event; Kinds narrows both.
func TestRolesAndKinds(t *testing.T) {
	h := newHeld(t, Options{})
	kinds := []string{"motion", "user.revoked", "recording.paused", "settings.changed", "storage.nearly_full", "invitation.made", "motion.end", "call.ringing", "crash"}
	for _, k := range kinds[:5] {
		h.add(t, k, 1)
	}
	h.publish()
	subs := map[string]*Subscription{}
	for name, s := range map[string]Subscriber{
		"viewer":           {User: "v", Resume: true},
		"owner":            {User: "o", Owner: true, Resume: true},
		"viewer recording": {User: "v", Resume: true, Kinds: []string{"recording.*", "user.*"}},
		"owner users":      {User: "o", Owner: true, Resume: true, Kinds: []string{"user.*", "invitation.made"}},
	} {
		sub, err := h.bus.Subscribe(h.log, s)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		subs[name] = sub
	}
	for _, k := range kinds[5:] {
		h.add(t, k, 1)
	}
	h.publish()
	for name, want := range map[string][]uint64{
		"viewer":           {1, 3, 5, 7, 8},
		"owner":            seq(1, 9),
		"viewer recording": {3},
		"owner users":      {2, 6},
	} {
		if got := drain(t, subs[name]); !slices.Equal(got, want) {
			t.Errorf("%s got %v, want %v", name, got, want)
		}
	}
}

func TestVisible(t *testing.T) {
	for kind, viewers := range map[string]bool{
		"motion": true, "motion.end": true, "doorbell.pressed": true, "call.missed": true, "camera.offline": true, "ring": false,
		"recording.paused": true, "recording.resumed": true, "recording.quarantined": true, "storage.nearly_full": true,
		"user.paired": false, "user.revoked": false, "user.renamed": false, "invitation.made": false,
		"invitation.cancelled": false, "settings.changed": false, "crash": false, "log": false, "update.available": false,
		"motionless": false, "": false,
	} {
		if Visible(kind, false) != viewers || !Visible(kind, true) {
			t.Errorf("%q: viewers %v, owners %v", kind, Visible(kind, false), Visible(kind, true))
		}
	}
	seen := map[string]bool{}
	for _, ty := range Types {
		if Visible(ty.Name, false) != ty.Viewers || seen[ty.Name] || ty.Doc == "" {
			t.Errorf("%+v: visible to viewers %v, listed twice %v", ty, Visible(ty.Name, false), seen[ty.Name])
		}
		seen[ty.Name] = true
	}
}

// EndUser ends that user's subscriptions with the reason, Close ends
// every one and refuses new ones, and Next returns on its context and
// on idle.
func TestEndUserAndClose(t *testing.T) {
	h := newHeld(t, Options{})
	a1, _ := h.bus.Subscribe(h.log, Subscriber{User: "a"})
	a2, _ := h.bus.Subscribe(h.log, Subscriber{User: "a", Owner: true})
	b, _ := h.bus.Subscribe(h.log, Subscriber{User: "b"})
	if got := h.bus.Subscriptions(); len(got) != 3 {
		t.Fatalf("subscriptions %v", got)
	}
	if n := h.bus.EndUser("a", "access ended"); n != 2 {
		t.Fatalf("ended %d", n)
	}
	for _, s := range []*Subscription{a1, a2} {
		if _, err := s.Next(context.Background(), nil); !errors.Is(err, ErrEnded) || err.Error() != "events: stream ended: access ended" {
			t.Fatalf("ended subscription: %v", err)
		}
	}
	if got := h.bus.Subscriptions(); !slices.Equal(got, []Held{{User: "b"}}) {
		t.Fatalf("subscriptions %v", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if m, err := b.Next(ctx, nil); m != nil || !errors.Is(err, context.Canceled) {
		t.Fatalf("next with a canceled context: %v %v", m, err)
	}
	if m, err := b.Next(context.Background(), closedIdle); m != nil || err != nil {
		t.Fatalf("idle: %v %v", m, err)
	}
	h.bus.Close()
	h.bus.Close()
	b.Close()
	if _, err := b.Next(context.Background(), nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
	if _, err := h.bus.Subscribe(h.log, Subscriber{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("subscribe after Close: %v", err)
	}
	h.add(t, "motion", 1)
	h.publish() // to nobody
}

// A history that fails to read ends Next with the error, and a resume
// that cannot learn the newest ID fails Subscribe.
func TestHistoryErrors(t *testing.T) {
	bus := New(Options{})
	if _, err := bus.Subscribe(badHistory{lastErr: errors.New("disk")}, Subscriber{Resume: true}); err == nil {
		t.Fatal("subscribe with an unreadable history")
	}
	s, err := bus.Subscribe(badHistory{last: 5}, Subscriber{Resume: true, After: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Next(context.Background(), nil); err == nil {
		t.Fatal("next with an unreadable history")
	}
}

type badHistory struct {
	last    uint64
	lastErr error
}

func (b badHistory) Query(eventlog.Query) ([]eventlog.Event, error) { return nil, errors.New("disk") }
func (b badHistory) LastID() (uint64, error)                        { return b.last, b.lastErr }
