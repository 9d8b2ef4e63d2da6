package media

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

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

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestSuperviseRestartsAfterPauseAndLogs(t *testing.T) {
	defer goleak.VerifyNone(t)
	src := &scriptedSource{steps: []error{errors.New("camera unplugged"), io.EOF, nil}}
	hub := NewHub(HubOptions{})
	c := hub.Subscribe(ConsumerOptions{})
	var logs syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	start := time.Now()
	go func() {
		Supervise(ctx, src, hub, SuperviseOptions{MinPause: 20 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		close(done)
	}()
	for src.runs.Load() < 3 {
		if time.Since(start) > 5*time.Second {
			t.Fatal("source was not restarted")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Two failures: pauses of 20 ms then 40 ms.
	if el := time.Since(start); el < 60*time.Millisecond {
		t.Fatalf("restarted after %v: no pause", el)
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
}

func TestSuperviseStopsDuringPause(t *testing.T) {
	defer goleak.VerifyNone(t)
	src := &scriptedSource{steps: []error{errors.New("boom")}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		Supervise(ctx, src, NewHub(HubOptions{}), SuperviseOptions{MinPause: time.Hour})
		close(done)
	}()
	for src.runs.Load() < 1 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Supervise did not return during its pause")
	}
}
