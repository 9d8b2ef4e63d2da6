package recorder

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/camd-project/camd/media"
	"github.com/camd-project/camd/media/fmp4/fmp4test"
	"github.com/camd-project/camd/storage/recordings"
)

type fakeStore struct {
	mu    sync.Mutex
	frags []recordings.Fragment
	block chan struct{} // when set, AppendBatch waits on it
	// commit is how long each AppendBatch takes (the card's commit).
	commit  time.Duration
	batches []int       // the size of each batch stored
	acked   []time.Time // when each fragment was stored
}

func (s *fakeStore) AppendBatch(fs []recordings.Fragment) (int, error) {
	if s.block != nil {
		<-s.block
	}
	time.Sleep(s.commit)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.frags = append(s.frags, fs...)
	s.batches = append(s.batches, len(fs))
	for range fs {
		s.acked = append(s.acked, time.Now())
	}
	return len(fs), nil
}

func (s *fakeStore) got() []recordings.Fragment {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]recordings.Fragment(nil), s.frags...)
}

// camera publishes frames into hub in real time, making a keyframe when
// asked (like the synthetic source) and every gop pictures otherwise. The
// tests run it, the hub and the recorder in a synctest bubble, where real
// time is fake time: seconds of stream take milliseconds, and every timer
// fires exactly when due.
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

// fragEnd is when the last stored fragment ends (zero without any).
func fragEnd(st *fakeStore) time.Time {
	fs := st.got()
	if len(fs) == 0 {
		return time.Time{}
	}
	return fs[len(fs)-1].Start.Add(fs[len(fs)-1].Duration)
}

// spanLog collects what OnSpan reports.
type spanLog struct {
	mu    sync.Mutex
	spans []Span
}

func (l *spanLog) add(s Span) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.spans = append(l.spans, s)
}

func (l *spanLog) got() []Span {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Span(nil), l.spans...)
}

func TestContinuousFragmentsStartOnRequestedKeyframes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := &fakeStore{}
		_, _, stop := start(t, Options{}, st)
		time.Sleep(4 * time.Second) // 4 s of stream
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
	})
}

func TestMotionModeKeepsPreRollAndPostRoll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := &fakeStore{}
		var spans spanLog
		r, hub, stop := start(t, Options{Mode: Motion, PreRoll: time.Second, PostRoll: time.Second, OnSpan: spans.add}, st)
		defer stop()
		// Let more than the pre-roll go by without motion.
		time.Sleep(2500 * time.Millisecond)
		synctest.Wait()
		if n := hub.Stats().Published; n < 200 { // 75 pictures, 125 Opus packets
			t.Fatalf("%d frames published in 2.5 s", n)
		}
		if n := len(st.got()); n != 0 {
			t.Fatalf("%d fragments stored before any motion", n)
		}
		trigger := time.Now()
		r.Trigger("api", 500*time.Millisecond)
		if !r.Stats().Motion {
			t.Fatal("no motion after a trigger")
		}
		// The span ends 0.5 s (hold) + 1 s (post-roll) after the trigger:
		// not a millisecond earlier.
		spanEnd := trigger.Add(1500 * time.Millisecond)
		time.Sleep(time.Until(spanEnd) - time.Millisecond)
		synctest.Wait()
		if n := len(spans.got()); n != 1 || !r.Stats().Motion {
			t.Fatalf("%d spans reported 1 ms before the end of the post-roll, motion %v", n, r.Stats().Motion)
		}
		time.Sleep(2 * time.Millisecond)
		synctest.Wait()
		if got := spans.got(); len(got) != 2 || !got[1].End.Equal(spanEnd) || r.Stats().Motion {
			t.Fatalf("1 ms after the end of the post-roll: spans %+v, motion %v", got, r.Stats().Motion)
		}
		// The fragment holding the end of the post-roll closes at the next
		// keyframe after it, which the recorder asks for within a fragment
		// (0.9 s).
		time.Sleep(time.Second)
		synctest.Wait()
		if end := fragEnd(st); end.Before(spanEnd) {
			t.Fatalf("a second after the post-roll, the recording ends %v after the trigger", end.Sub(trigger))
		}
		frags := st.got()
		time.Sleep(time.Second)
		synctest.Wait()
		if n := len(st.got()); n != len(frags) {
			t.Fatalf("%d fragments stored after the span's, want none", n-len(frags))
		}
		if len(frags) < 2 {
			t.Fatalf("%d fragments after a trigger", len(frags))
		}
		// Fragments begin at keyframes, about a second apart: the pre-roll
		// starts at the last one at least 1 s before the trigger.
		if first := frags[0].Start; first.After(trigger.Add(-time.Second)) || first.Before(trigger.Add(-3*time.Second)) {
			t.Errorf("recording starts %v before the trigger, pre-roll is 1 s", trigger.Sub(first))
		}
		last := frags[len(frags)-1]
		if end := last.Start.Add(last.Duration); end.Before(spanEnd) || end.After(trigger.Add(4*time.Second)) {
			t.Errorf("recording ends %v after the trigger; hold 0.5 s + post-roll 1 s", end.Sub(trigger))
		}
		if got := spans.got(); len(got) != 2 || !got[0].End.IsZero() || got[1].End.IsZero() ||
			got[0].ID != got[1].ID || got[1].Cause != "api" || !got[0].Start.Equal(trigger) {
			t.Fatalf("spans: %+v", got)
		}
	})
}

// TestMotionSpanFollowsItsCauses: a span lasts while any cause does (held
// triggers, the detector's motion) and ends the post-roll after the last,
// to the instant; the holds of a cause never shorten.
func TestMotionSpanFollowsItsCauses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var spans spanLog
		r := New(nil, nil, Options{Mode: Motion, PostRoll: 10 * time.Second, OnSpan: spans.add})
		t0 := time.Now()
		r.Trigger("pir", 2*time.Second)
		time.Sleep(time.Second)
		r.Trigger("api", 500*time.Millisecond) // ends first
		r.Trigger("pir", 3*time.Second)        // now until t0+4s
		r.Trigger("pir", time.Second)          // does not shorten it
		time.Sleep(time.Second)
		r.SetMotion("picture", true, time.Now()) // t0+2s, until cleared
		time.Sleep(5 * time.Second)
		r.SetMotion("picture", false, time.Now()) // t0+7s: the last cause ends
		time.Sleep(10*time.Second - time.Millisecond)
		synctest.Wait()
		if got := spans.got(); len(got) != 1 || !got[0].Start.Equal(t0) || got[0].Cause != "pir" {
			t.Fatalf("spans before the post-roll ran out: %+v", got)
		}
		time.Sleep(2 * time.Millisecond)
		synctest.Wait()
		got := spans.got()
		if want := t0.Add(17 * time.Second); len(got) != 2 || !got[1].End.Equal(want) || got[1].ID != got[0].ID {
			t.Fatalf("spans %+v, want the first to end at t0+17s", got)
		}

		// Motion during the post-roll carries the span on; a new span
		// after it has a new ID.
		r.Trigger("api", time.Second)
		time.Sleep(5 * time.Second)
		r.Trigger("api", time.Second)
		time.Sleep(time.Hour)
		got = spans.got()
		if len(got) != 4 || got[2].ID != got[1].ID+1 || !got[3].End.Equal(got[2].Start.Add(16*time.Second)) {
			t.Fatalf("second span: %+v", got[2:])
		}
	})
}

func TestOffHoldsNoSubscription(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := &fakeStore{}
		r, hub, stop := start(t, Options{Mode: Off}, st)
		defer stop()
		synctest.Wait()
		if n := len(hub.Stats().Consumers); n != 0 {
			t.Fatalf("%d consumers while off", n)
		}
		r.SetMode(Continuous)
		time.Sleep(2 * time.Second) // 2 s of recording
		synctest.Wait()
		if n := len(hub.Stats().Consumers); n != 1 {
			t.Fatalf("%d consumers while recording", n)
		}
		r.SetMode(Off)
		synctest.Wait()
		if n := len(hub.Stats().Consumers); n != 0 {
			t.Fatalf("%d consumers after turning off", n)
		}
		if len(st.got()) == 0 {
			t.Fatal("nothing recorded while on")
		}
	})
}

func TestSlowStoreNeverHoldsUpTheHub(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := &fakeStore{block: make(chan struct{})}
		r, hub, stop := start(t, Options{Queue: 2}, st)
		// One fragment in the store's hands and two in the queue take
		// about 3 s; the next ones are dropped.
		time.Sleep(5 * time.Second)
		synctest.Wait()
		// The recorder drops fragments only if the hub went on delivering
		// while the store was stuck: nothing waited on the store.
		if st := r.Stats(); st.Dropped == 0 || st.Fragments != 0 {
			t.Fatalf("stats with the store stuck: %+v", st)
		}
		before := hub.Stats().Published
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if n := hub.Stats().Published - before; n <= 100 {
			t.Fatalf("the source published %d frames in 2 s with the store stuck", n)
		}
		close(st.block)
		synctest.Wait()
		if st := r.Stats(); st.Fragments != 3 {
			t.Errorf("%d fragments stored once the store came back, want the 3 it held", st.Fragments)
		}
		stop()
	})
}

// TestForceRecordsInEveryMode: a forced range (a doorbell's press) is
// recorded with its seconds before when the mode is off (PreRollWhenOff)
// or motion without motion, and nothing around it.
func TestForceRecordsInEveryMode(t *testing.T) {
	for _, mode := range []Mode{Off, Motion} {
		t.Run(string(mode), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				st := &fakeStore{}
				r, _, stop := start(t, Options{Mode: mode, PreRoll: 5 * time.Second, PreRollWhenOff: true}, st)
				defer stop()
				time.Sleep(4 * time.Second)
				synctest.Wait()
				if n := len(st.got()); n != 0 {
					t.Fatalf("%d fragments before the press", n)
				}
				press := time.Now()
				r.Force(press.Add(-2*time.Second), press.Add(8*time.Second))
				time.Sleep(12 * time.Second)
				synctest.Wait()
				frags := st.got()
				if len(frags) == 0 {
					t.Fatal("nothing recorded")
				}
				first, last := frags[0], frags[len(frags)-1]
				if first.Start.After(press.Add(-2*time.Second)) || first.Start.Before(press.Add(-4*time.Second)) {
					t.Errorf("the clip starts %v before the press, want 2 s (and a fragment at most)", press.Sub(first.Start))
				}
				if end := last.Start.Add(last.Duration); end.Before(press.Add(8*time.Second)) || end.After(press.Add(10*time.Second)) {
					t.Errorf("the clip ends %v after the press, want 8 s (and a fragment at most)", end.Sub(press))
				}
				if r.Mode() != mode {
					t.Fatal("the mode changed")
				}
			})
		})
	}
}

// TestSlowCardGetsFragmentsInBatches: with commits slower than the
// fragments come, the writer hands the store every fragment waiting at
// once, so nothing is dropped and a fragment waits for at most the
// commit in flight and its own, however long the recording; with
// commits faster than that, each fragment is committed alone, at once.
func TestSlowCardGetsFragmentsInBatches(t *testing.T) {
	for _, c := range []struct {
		name   string
		commit time.Duration
	}{{"slow", 2500 * time.Millisecond}, {"fast", 300 * time.Millisecond}} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				st := &fakeStore{commit: c.commit}
				r, _, stop := start(t, Options{}, st)
				time.Sleep(40 * time.Second)
				stop()
				stats := r.Stats()
				if stats.Dropped != 0 || stats.Failed != 0 {
					t.Fatalf("%s commits of %v: %+v", c.name, c.commit, stats)
				}
				st.mu.Lock()
				defer st.mu.Unlock()
				if len(st.frags) < 40 || uint64(len(st.frags)) != stats.Fragments {
					t.Fatalf("%d fragments stored in 40 s, %d counted", len(st.frags), stats.Fragments)
				}
				frame := 10 * time.Millisecond
				var worst time.Duration
				for i, f := range st.frags {
					if i > 0 && !f.Start.Equal(st.frags[i-1].Start.Add(st.frags[i-1].Duration)) {
						t.Fatalf("fragment %d does not follow the one before", i)
					}
					worst = max(worst, st.acked[i].Sub(f.Start.Add(f.Duration)))
				}
				if c.commit < 800*time.Millisecond {
					// Faster than the fragments: no fragment waits for
					// another, and none waits before its commit.
					for i, n := range st.batches {
						if n != 1 {
							t.Fatalf("commit %d held %d fragments with commits of %v", i, n, c.commit)
						}
					}
					if worst > c.commit+frame {
						t.Fatalf("a fragment was stored %v after its end, commits take %v", worst, c.commit)
					}
					return
				}
				// The commit in flight when a fragment ends, then its own:
				// not the queue that one commit a fragment would grow (and
				// drop from) at this pace.
				if worst > 2*c.commit+frame {
					t.Fatalf("a fragment was stored %v after its end, commits take %v", worst, c.commit)
				}
				if len(st.batches) > int(40*time.Second/c.commit)+1 {
					t.Fatalf("%d commits of %v in 40 s", len(st.batches), c.commit)
				}
				if slices.Max(st.batches) < 2 {
					t.Fatalf("batches %v: no fragments grouped", st.batches)
				}
			})
		})
	}
}

// scriptStore stores what each call's script allows.
type scriptStore struct {
	calls [][]recordings.Fragment
	// answer gives each call's result from the batch it got.
	answer func(call int, fs []recordings.Fragment) (int, error)
}

func (s *scriptStore) AppendBatch(fs []recordings.Fragment) (int, error) {
	s.calls = append(s.calls, fs)
	return s.answer(len(s.calls)-1, fs)
}

// TestBatchErrorsAreCounted: what the store stored of a batch counts as
// recorded, and only that; a fragment it refused alone lets the rest of
// the batch go on; a failure (recording paused) fails the rest.
func TestBatchErrorsAreCounted(t *testing.T) {
	batch := func() []recordings.Fragment {
		var fs []recordings.Fragment
		for i := range 5 {
			fs = append(fs, recordings.Fragment{Stream: 1, Start: time.Unix(int64(i), 0), Duration: time.Second, Data: make([]byte, 100)})
		}
		return fs
	}
	paused := fmt.Errorf("%w: storage full", recordings.ErrPaused)
	for _, c := range []struct {
		name           string
		answer         func(int, []recordings.Fragment) (int, error)
		stored, failed uint64
		calls          int
		lastStored     int // the last fragment stored, -1 none
		lastErrSet     bool
	}{
		{"all", func(int, []recordings.Fragment) (int, error) { return 5, nil }, 5, 0, 1, 4, false},
		{"paused midway", func(int, []recordings.Fragment) (int, error) { return 2, paused }, 2, 3, 1, 1, true},
		{"paused at once", func(int, []recordings.Fragment) (int, error) { return 0, paused }, 0, 5, 1, -1, true},
		{"one refused", func(call int, fs []recordings.Fragment) (int, error) {
			if call == 0 {
				return 1, fmt.Errorf("%w: too large", recordings.ErrFragment)
			}
			return len(fs), nil
		}, 4, 1, 2, 4, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := &scriptStore{answer: c.answer}
			r := New(nil, st, Options{})
			fs := batch()
			r.commit(fs)
			s := r.Stats()
			if s.Fragments != c.stored || s.Failed != c.failed || len(st.calls) != c.calls {
				t.Fatalf("stats %+v after %d calls, want %d stored, %d failed, %d calls", s, len(st.calls), c.stored, c.failed, c.calls)
			}
			if c.calls == 2 && (len(st.calls[1]) != 3 || !st.calls[1][0].Start.Equal(fs[2].Start)) {
				t.Fatalf("after the refused fragment the store got %d fragments", len(st.calls[1]))
			}
			var want time.Time
			if c.lastStored >= 0 {
				want = fs[c.lastStored].Start.Add(time.Second)
			}
			if !s.LastEnd.Equal(want) {
				t.Errorf("last end %v, want %v", s.LastEnd, want)
			}
			if (s.LastError != "") != c.lastErrSet {
				t.Errorf("last error %q", s.LastError)
			}
		})
	}
}
