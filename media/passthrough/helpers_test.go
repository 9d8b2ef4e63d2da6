package passthrough_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/camd-project/camd/internal/testenv"
	"github.com/camd-project/camd/media"
	"github.com/camd-project/camd/media/h264"
	"github.com/camd-project/camd/media/h264/h264test"
	"github.com/camd-project/camd/media/passthrough"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// publisher records what a source publishes.
type publisher struct {
	mu     sync.Mutex
	frames []*media.Frame
	times  []time.Time
	signal chan struct{}
}

func newPublisher() *publisher { return &publisher{signal: make(chan struct{}, 1)} }

func (p *publisher) Publish(f *media.Frame) {
	p.mu.Lock()
	p.frames = append(p.frames, f)
	p.times = append(p.times, time.Now())
	p.mu.Unlock()
	select {
	case p.signal <- struct{}{}:
	default:
	}
}

func (p *publisher) KeyframeRequested() bool { return false }
func (p *publisher) TargetBitrate() int      { return 0 }

func (p *publisher) Frames() []*media.Frame {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*media.Frame(nil), p.frames...)
}

// wait waits until n frames were published.
func (p *publisher) wait(t *testing.T, n int, timeout time.Duration) []*media.Frame {
	t.Helper()
	deadline := time.After(timeout)
	for {
		if f := p.Frames(); len(f) >= n {
			return f
		}
		select {
		case <-p.signal:
		case <-deadline:
			t.Fatalf("%d frames published after %v, want %d", len(p.Frames()), timeout, n)
		}
	}
}

func newLogger() (*slog.Logger, *testenv.Buffer) {
	lb := &testenv.Buffer{}
	return slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug})), lb
}

// started runs a source in the background; stop cancels it and returns
// what Run returned.
type started struct {
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, src *passthrough.Source, pub media.Publisher) *started {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &started{cancel: cancel, done: make(chan error, 1)}
	go func() { s.done <- src.Run(ctx, pub) }()
	t.Cleanup(func() {
		cancel()
		<-s.done
	})
	return s
}

// result waits for Run to return by itself.
func (s *started) result(t *testing.T, timeout time.Duration) error {
	t.Helper()
	select {
	case err := <-s.done:
		s.done <- err
		return err
	case <-time.After(timeout):
		t.Fatalf("Run did not return within %v", timeout)
		return nil
	}
}

// stop cancels Run and checks that it returns promptly.
func (s *started) stop(t *testing.T) error {
	t.Helper()
	s.cancel()
	return s.result(t, time.Second)
}

func mustNew(t *testing.T, opts passthrough.Options) *passthrough.Source {
	t.Helper()
	src, err := passthrough.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// split returns a stream's access units as the h264 package cuts them.
func split(t *testing.T, data []byte) []h264.AccessUnit {
	t.Helper()
	s := h264.NewSplitter(bytes.NewReader(data))
	var aus []h264.AccessUnit
	for {
		au, err := s.Next()
		if err == io.EOF {
			return aus
		}
		if err != nil {
			t.Fatal(err)
		}
		aus = append(aus, au)
	}
}

func concat(frames []*media.Frame) []byte {
	var b []byte
	for _, f := range frames {
		b = append(b, f.Data...)
	}
	return b
}

// encode makes a libx264 stream and returns its path and bytes.
func encode(t *testing.T, s h264test.Stream) (string, []byte) {
	t.Helper()
	path := h264test.Encode(t, t.TempDir(), s)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, data
}

func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// naluTypes lists the NAL unit types of an access unit.
func naluTypes(data []byte) []byte {
	var types []byte
	for _, n := range h264.NALUs(data) {
		types = append(types, n[0]&0x1f)
	}
	return types
}
