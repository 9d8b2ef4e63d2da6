package device

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/camd-project/camd/internal/testenv"
	"github.com/camd-project/camd/media"
)

// fakeSource publishes one keyframe, then waits for its context, noting
// the bitrate target it saw.
type fakeSource struct {
	name   string
	fail   error
	mu     sync.Mutex
	runs   int
	target int
}

func (f *fakeSource) Info() media.SourceInfo {
	return media.SourceInfo{Name: f.name, ForcesKeyframes: true}
}

func (f *fakeSource) Run(ctx context.Context, pub media.Publisher) error {
	f.mu.Lock()
	f.runs++
	f.target = pub.TargetBitrate()
	f.mu.Unlock()
	pub.Publish(&media.Frame{Kind: media.Video, Key: true, Data: []byte{0, 0, 0, 1, 0x65}})
	if f.fail != nil {
		return f.fail
	}
	<-ctx.Done()
	return ctx.Err()
}

func (f *fakeSource) seen() (runs, target int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.runs, f.target
}

func TestLiveSourceSwitchesWithoutTheSupervisor(t *testing.T) {
	hub := media.NewHub(media.HubOptions{})
	defer hub.Close()
	a, b := &fakeSource{name: "a"}, &fakeSource{name: "b"}
	l := newLiveSource(a, 1_000_000)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	hub.Begin(l.Info())
	go func() { done <- l.Run(ctx, hub) }()
	testenv.Eventually(t, "a runs", func() bool { r, _ := a.seen(); return r == 1 })
	// No viewer: the encoder aims at the bitrate setting.
	if _, target := a.seen(); target != 1_000_000 {
		t.Fatalf("target %d", target)
	}

	l.replace(b)
	testenv.Eventually(t, "b runs", func() bool { r, _ := b.seen(); return r == 1 })
	if hub.Info().Name != "b" {
		t.Fatalf("hub did not begin b's epoch: %q", hub.Info().Name)
	}
	if l.Info().Name != "b" {
		t.Fatal(l.Info())
	}
	select {
	case err := <-done:
		t.Fatalf("Run returned on a switch: %v", err)
	default:
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
	if r, _ := a.seen(); r != 1 {
		t.Fatalf("a ran %d times", r)
	}
}

func TestLiveSourceReturnsFailures(t *testing.T) {
	boom := errors.New("camera unplugged")
	l := newLiveSource(&fakeSource{name: "a", fail: boom}, 0)
	hub := media.NewHub(media.HubOptions{})
	defer hub.Close()
	if err := l.Run(context.Background(), hub); !errors.Is(err, boom) {
		t.Fatalf("failure not passed to the supervisor: %v", err)
	}
}

func TestCappedPublisher(t *testing.T) {
	hub := media.NewHub(media.HubOptions{})
	defer hub.Close()
	l := newLiveSource(&fakeSource{}, 800_000)
	p := cappedPublisher{Publisher: hub, ceiling: &l.ceiling}
	for _, c := range []struct{ viewers, want int }{
		{0, 800_000},         // no estimate: the setting
		{500_000, 500_000},   // a slow viewer lowers it
		{3_000_000, 800_000}, // a fast one does not raise it
	} {
		hub.SetTargetBitrate(c.viewers)
		if got := p.TargetBitrate(); got != c.want {
			t.Errorf("viewers %d: target %d, want %d", c.viewers, got, c.want)
		}
	}
	l.setCeiling(0)
	hub.SetTargetBitrate(0)
	if p.TargetBitrate() != 0 {
		t.Error("no ceiling: the encoder's default")
	}
}
