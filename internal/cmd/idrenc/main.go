// Command idrenc stands in for a camera SoC's hardware encoder in camd's
// tests: it writes camd's synthetic picture as H.264 Annex-B on its
// standard output in real time, an IDR every -gop, and one more at once
// each time it gets SIGUSR1, as an encoder's control tool would ask for
// one (passthrough.keyframe_command: [sh, -c, 'kill -USR1
// "$CAMD_SOURCE_PID"']). It counts the IDRs it was asked for on its
// standard error when it exits.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/camd-project/camd/media"
	"github.com/camd-project/camd/media/encoder"
	"github.com/camd-project/camd/media/synthetic"
)

// stdout publishes each access unit on the standard output.
type stdout struct {
	want  atomic.Bool
	asked atomic.Int64
	err   chan error
}

func (p *stdout) Publish(f *media.Frame) {
	if f.Kind != media.Video {
		return
	}
	if _, err := os.Stdout.Write(f.Data); err != nil {
		select {
		case p.err <- err:
		default:
		}
	}
}

func (p *stdout) KeyframeRequested() bool { return p.want.Swap(false) }
func (p *stdout) TargetBitrate() int      { return 0 }

func main() {
	width := flag.Int("width", 1280, "picture width")
	height := flag.Int("height", 720, "picture height")
	fps := flag.Int("fps", 30, "pictures a second")
	bitrate := flag.Int("bitrate", 2_000_000, "bits a second")
	gop := flag.Duration("gop", 2*time.Second, "time between IDRs")
	flag.Parse()

	src, err := synthetic.New(synthetic.Options{
		Video:   encoder.H264Options{Width: *width, Height: *height, FPS: *fps, Bitrate: *bitrate, KeyframeInterval: *gop},
		NoAudio: true,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "idrenc:", err)
		os.Exit(1)
	}
	pub := &stdout{err: make(chan error, 1)}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	go func() {
		for range usr1 {
			pub.asked.Add(1)
			pub.want.Store(true)
		}
	}()
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, pub) }()
	select {
	case err = <-pub.err: // camd went away
		cancel()
		<-done
	case err = <-done:
	}
	fmt.Fprintf(os.Stderr, "idrenc: %d IDRs asked for; %v\n", pub.asked.Load(), err)
}
