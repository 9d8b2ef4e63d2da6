package device

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os/exec"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/camd-project/camd/internal/testenv"
	"github.com/camd-project/camd/media/h264/h264test"
	"github.com/camd-project/camd/media/whep"
)

// Every test of the package leaves no goroutine behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The daemon's lifecycle leaves no goroutine behind: New then Close, a
// New that fails half way, and Run with viewers, playbacks and a factory
// reset, each checked right after it ends.
func TestDaemonLifecycleLeavesNoGoroutines(t *testing.T) {
	t.Run("new and close", func(t *testing.T) {
		defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
		d, err := New(passthroughConfig(t), slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		d.Close()
		d.Close()
	})
	t.Run("new fails", func(t *testing.T) {
		defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
		cfg := passthroughConfig(t)
		cfg.Board = "nosuchboard.yaml"
		if _, err := New(cfg, slog.New(slog.DiscardHandler)); err == nil {
			t.Fatal("New with a missing board profile")
		}
	})
	t.Run("live view", func(t *testing.T) {
		defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
		cfg := testConfig(t)
		cfg.Audio.Enabled = false
		d, stop := runningAt(t, cfg)
		token := owner(t, d)
		client := testClient()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := whep.View(ctx, "https://"+d.Addr().String()+"/api/v1/whep", whep.ViewOptions{
			HTTPClient: client, Header: http.Header{"Authorization": {"Bearer " + token}},
		})
		if err != nil {
			t.Fatal(err)
		}
		stop()
		client.CloseIdleConnections()
	})
	t.Run("rtsp", func(t *testing.T) {
		ffmpeg := testenv.Tool(t, "ffmpeg")
		defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
		d, stop := runningAt(t, rtspConfig(t))
		key := streamKey(t, d, owner(t, d), "nvr")
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		cmd := exec.CommandContext(ctx, ffmpeg, "-v", "error", "-rtsp_transport", "tcp",
			"-i", "rtsp://"+key.ID+":"+key.Secret+"@"+d.rtsp.Addr().String()+"/live", "-f", "null", "-")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, "an RTSP session playing", func() bool {
			s := d.rtsp.Stats().Sessions
			return len(s) == 1 && s[0].Frames > 0
		})
		stop()
		cmd.Wait()
	})
	t.Run("playback", func(t *testing.T) {
		h264test.NeedFFmpeg(t)
		defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
		d, stop := runningAt(t, recordingConfig(t))
		token := owner(t, d)
		tl := waitRecorded(t, d, token, 2)
		from := tl.Spans[0].Start
		client := testClient()
		// A viewer still watching when camd stops.
		ctx, cancel := context.WithCancel(context.Background())
		viewing := make(chan error, 1)
		go func() {
			_, err := whep.View(ctx, "https://"+d.Addr().String()+"/api/v1/recordings/whep?from="+from.Format(time.RFC3339Nano)+"&to=now",
				whep.ViewOptions{HTTPClient: client, Header: http.Header{"Authorization": {"Bearer " + token}}})
			viewing <- err
		}()
		testenv.Eventually(t, "a playback", func() bool {
			select {
			case err := <-viewing:
				t.Fatalf("the playback's viewer ended before camd stopped: %v", err)
			default:
			}
			return playing(d) == 1
		})
		stop()
		if n := playing(d); n != 0 {
			t.Fatalf("%d playbacks after Run", n)
		}
		cancel()
		<-viewing
		client.CloseIdleConnections()
	})
	t.Run("factory reset", func(t *testing.T) {
		defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
		d, err := New(passthroughConfig(t), slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- d.Run(context.Background()) }()
		d.reset.request()
		if err := <-done; !errors.Is(err, ErrFactoryReset) {
			t.Fatalf("Run: %v", err)
		}
	})
}
