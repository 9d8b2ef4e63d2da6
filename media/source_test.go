package media

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/camd-project/camd/internal/testenv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// scriptedSource fails, ends or runs until cancelled, as told.
type scriptedSource struct {
	runs  atomic.Int32
	steps []error // what each run returns; nil: run until ctx ends
}

func (s *scriptedSource) Info() SourceInfo { return SourceInfo{Name: "scripted"} }

func (s *scriptedSource) Run(ctx context.Context, pub Publisher) error {
	n := int(s.runs.Add(1)) - 1
	pub.Publish(&Frame{Kind: Video, Key: true, Data: []byte{0, 0, 0, 1, 0x65}})
	if n < len(s.steps) && s.steps[n] != nil {
		return s.steps[n]
	}
	<-ctx.Done()
	return ctx.Err()
}

func TestSuperviseRestartsAfterPauseAndLogs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &scriptedSource{steps: []error{errors.New("camera unplugged"), io.EOF, nil}}
		hub := NewHub(HubOptions{})
		c := hub.Subscribe(ConsumerOptions{})
		var logs testenv.Buffer
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			Supervise(ctx, src, hub, SuperviseOptions{MinPause: 20 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			close(done)
		}()
		// Two failures: pauses of 20 ms then 40 ms before the third run.
		time.Sleep(60*time.Millisecond - time.Nanosecond)
		synctest.Wait()
		if n := src.runs.Load(); n != 2 {
			t.Fatalf("%d runs before the pauses ended, want 2", n)
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait() // the third run waits for ctx
		if n := src.runs.Load(); n != 3 {
			t.Fatalf("%d runs after the pauses, want 3", n)
		}
		cancel()
		<-done
		out := logs.String()
		for _, want := range []string{"camera unplugged", "EOF", "pause=20ms", "pause=40ms", "media: source stopped"} {
			if !strings.Contains(out, want) {
				t.Errorf("log lacks %q:\n%s", want, out)
			}
		}
		// Each run began a new epoch, so the consumer saw three keyframes with
		// three different epochs.
		got, _ := drain(t, c)
		if len(got) != 3 || got[0].Epoch() == got[1].Epoch() || got[1].Epoch() == got[2].Epoch() {
			t.Fatalf("frames across restarts: %d", len(got))
		}
		hub.Close()
	})
}

func TestSupervisePauseResetsAfterAHealthyRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &timedSource{lasts: []time.Duration{0, 0, time.Minute, 0, time.Hour}}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			Supervise(ctx, src, NewHub(HubOptions{}), SuperviseOptions{MinPause: time.Second, Healthy: 30 * time.Second})
			close(done)
		}()
		time.Sleep(time.Hour) // the last run waits for ctx
		cancel()
		<-done
		// Runs start after pauses of 1 s and 2 s; the third lasts a minute,
		// so the pause after it is 1 s again, not 4 s.
		want := []time.Duration{0, time.Second, 3 * time.Second, 3*time.Second + time.Minute + time.Second, 4*time.Second + time.Minute + 2*time.Second}
		if got := src.started; !slices.Equal(got, want) {
			t.Fatalf("runs started at %v after the start, want %v", got, want)
		}
	})
}

// timedSource fails after each run's time in lasts; its last run waits
// for ctx. It notes when each run started.
type timedSource struct {
	lasts   []time.Duration
	t0      time.Time
	started []time.Duration
}

func (s *timedSource) Info() SourceInfo { return SourceInfo{Name: "timed"} }

func (s *timedSource) Run(ctx context.Context, pub Publisher) error {
	if s.started == nil {
		s.t0 = time.Now()
	}
	s.started = append(s.started, time.Since(s.t0))
	n := len(s.started) - 1
	if n == len(s.lasts)-1 {
		<-ctx.Done()
		return ctx.Err()
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(s.lasts[n]):
		return errors.New("failed")
	}
}

func TestSuperviseStopsDuringPause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &scriptedSource{steps: []error{errors.New("boom")}}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		start := time.Now()
		go func() {
			Supervise(ctx, src, NewHub(HubOptions{}), SuperviseOptions{MinPause: time.Hour})
			close(done)
		}()
		synctest.Wait() // failed once, pausing
		if n := src.runs.Load(); n != 1 {
			t.Fatalf("%d runs before the pause ended, want 1", n)
		}
		cancel()
		<-done
		if el := time.Since(start); el != 0 {
			t.Fatalf("Supervise returned %v into its pause, want at once", el)
		}
	})
}
