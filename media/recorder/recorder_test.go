package recorder

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/camd-project/camd/media"
	"github.com/camd-project/camd/media/fmp4/fmp4test"
	"github.com/camd-project/camd/storage/recordings"
)

type fakeStore struct {
	mu    sync.Mutex
	frags []recordings.Fragment
	block chan struct{} // when set, Append waits on it
}

func (s *fakeStore) Append(f recordings.Fragment) error {
	if s.block != nil {
		<-s.block
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.frags = append(s.frags, f)
	return nil
}

func (s *fakeStore) got() []recordings.Fragment {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]recordings.Fragment(nil), s.frags...)
}

// camera publishes frames into hub in real time, making a keyframe when
// asked (like the synthetic source) and every gop pictures otherwise.
func camera(ctx context.Context, hub *media.Hub, gop int) {
	hub.Begin(media.SourceInfo{Name: "test", ForcesKeyframes: true})
	src := &fmp4test.Source{GOP: 1, Audio: true, Start: time.Now()} // every picture carries SPS/PPS
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	n := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for _, f := range src.Frames(10 * time.Millisecond) {
			if f.Kind == media.Video {
				f.Key = hub.KeyframeRequested() || n%gop == 0
				n++
			}
			hub.Publish(f)
		}
	}
}

func start(t *testing.T, opts Options, st store) (*Recorder, *media.Hub, func()) {
	t.Helper()
	hub := media.NewHub(media.HubOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { camera(ctx, hub, 1000) })
	r := New(hub, st, opts)
	wg.Go(func() { r.Run(ctx) })
	return r, hub, func() {
		cancel()
		wg.Wait()
		hub.Close()
	}
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestContinuousFragmentsStartOnRequestedKeyframes(t *testing.T) {
	st := &fakeStore{}
	_, _, stop := start(t, Options{}, st)
	time.Sleep(4 * time.Second)
	stop()
	frags := st.got()
	if len(frags) < 3 {
		t.Fatalf("%d fragments in 4 s", len(frags))
	}
	for i, f := range frags {
		if !f.Key || f.Init == nil || f.Stream != 1 {
			t.Errorf("fragment %d: key %v init %d stream %d", i, f.Key, len(f.Init), f.Stream)
		}
		// The GOP is 1000 pictures: only the recorder's requests end
		// fragments (the last one is flushed at stop).
		if i < len(frags)-1 && (f.Duration < 800*time.Millisecond || f.Duration > time.Second) {
			t.Errorf("fragment %d lasts %v", i, f.Duration)
		}
		if i > 0 && !f.Start.Equal(frags[i-1].Start.Add(frags[i-1].Duration)) {
			t.Errorf("fragment %d does not follow the previous one", i)
		}
	}
}

// waitFor polls cond until it holds or a generous deadline passes: these
// tests run real time, and a loaded CI machine may be slow.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestMotionModeKeepsPreRollAndPostRoll(t *testing.T) {
	st := &fakeStore{}
	var mu sync.Mutex
	var spans []Span
	r, hub, stop := start(t, Options{Mode: Motion, PreRoll: time.Second, PostRoll: time.Second,
		OnSpan: func(s Span) { mu.Lock(); spans = append(spans, s); mu.Unlock() }}, st)
	defer stop()
	// Let more than the pre-roll go by without motion.
	waitFor(t, "2.5 s of pictures", func() bool { return hub.Stats().Published > 250 })
	if n := len(st.got()); n != 0 {
		t.Fatalf("%d fragments stored before any motion", n)
	}
	trigger := time.Now()
	r.Trigger("api", 500*time.Millisecond)
	if !r.Stats().Motion {
		t.Fatal("no motion after a trigger")
	}
	// The span ends 0.5 s (hold) + 1 s (post-roll) after the trigger.
	waitFor(t, "the motion span to end", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(spans) == 2
	})
	// The fragment holding the end of the post-roll closes at the next
	// keyframe after it.
	fragEnd := func() time.Time {
		fs := st.got()
		if len(fs) == 0 {
			return time.Time{}
		}
		return fs[len(fs)-1].Start.Add(fs[len(fs)-1].Duration)
	}
	waitFor(t, "the post-roll to be stored", func() bool { return !fragEnd().Before(trigger.Add(1500 * time.Millisecond)) })
	time.Sleep(time.Second) // nothing more may follow
	frags := st.got()
	if len(frags) < 2 {
		t.Fatalf("%d fragments after a trigger", len(frags))
	}
	// Fragments begin at keyframes, about a second apart: the pre-roll
	// starts at the last one at least 1 s before the trigger.
	if first := frags[0].Start; first.After(trigger.Add(-time.Second)) || first.Before(trigger.Add(-3*time.Second)) {
		t.Errorf("recording starts %v before the trigger, pre-roll is 1 s", trigger.Sub(first))
	}
	last := frags[len(frags)-1]
	if end := last.Start.Add(last.Duration); end.Before(trigger.Add(1500*time.Millisecond)) || end.After(trigger.Add(4*time.Second)) {
		t.Errorf("recording ends %v after the trigger; hold 0.5 s + post-roll 1 s", end.Sub(trigger))
	}
	mu.Lock()
	defer mu.Unlock()
	if len(spans) != 2 || spans[0].End.IsZero() == false || spans[1].End.IsZero() || spans[0].ID != spans[1].ID || spans[1].Cause != "api" {
		t.Fatalf("spans: %+v", spans)
	}
}

func TestOffHoldsNoSubscription(t *testing.T) {
	st := &fakeStore{}
	r, hub, stop := start(t, Options{Mode: Off}, st)
	defer stop()
	time.Sleep(200 * time.Millisecond)
	if n := len(hub.Stats().Consumers); n != 0 {
		t.Fatalf("%d consumers while off", n)
	}
	r.SetMode(Continuous)
	time.Sleep(2 * time.Second)
	if n := len(hub.Stats().Consumers); n != 1 {
		t.Fatalf("%d consumers while recording", n)
	}
	r.SetMode(Off)
	time.Sleep(200 * time.Millisecond)
	if n := len(hub.Stats().Consumers); n != 0 {
		t.Fatalf("%d consumers after turning off", n)
	}
	if len(st.got()) == 0 {
		t.Fatal("nothing recorded while on")
	}
}

func TestSlowStoreNeverHoldsUpTheHub(t *testing.T) {
	st := &fakeStore{block: make(chan struct{})}
	r, hub, stop := start(t, Options{Queue: 2}, st)
	// The recorder drops fragments only if the hub went on delivering
	// while the store was stuck: nothing waited on the store.
	waitFor(t, "fragments to be dropped at the stuck store", func() bool { return r.Stats().Dropped > 0 })
	before := hub.Stats().Published
	waitFor(t, "the source to go on publishing", func() bool { return hub.Stats().Published > before+100 })
	close(st.block)
	stop()
}
