package device

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/camd-project/camd/media"
	"github.com/camd-project/camd/media/export"
	"github.com/camd-project/camd/media/playback"
	"github.com/camd-project/camd/media/whep"
)

// playbackEndGrace is how long a played-back session stays after the
// recording's last frame, so that the viewer shows it before the
// connection closes.
const playbackEndGrace = time.Second

// errShuttingDown refuses a playback while the recordings close.
var errShuttingDown = errors.New("recordings: shutting down")

// playbacks are the recordings being played to WebRTC viewers. Each is one
// goroutine that owns its export and its hub.
type playbacks struct {
	log    *slog.Logger
	mu     sync.Mutex
	ctx    context.Context // cancelled when the recordings close
	cancel context.CancelFunc
	wg     sync.WaitGroup
	active atomic.Int32
}

func newPlaybacks(log *slog.Logger) *playbacks {
	ps := &playbacks{log: log}
	ps.ctx, ps.cancel = context.WithCancel(context.Background())
	return ps
}

// Play prepares the playback of x, which it owns from now on, for a WHEP
// session (api.Recordings): the recording plays into the feed's hub in
// real time once the viewer is connected, from the keyframe at or before
// the range's start, and the session ends a second after the recording
// does.
func (ps *playbacks) Play(x *export.File) (whep.Feed, error) {
	ps.mu.Lock()
	if ps.ctx.Err() != nil {
		ps.mu.Unlock()
		x.Close()
		return whep.Feed{}, errShuttingDown
	}
	ps.wg.Add(1)
	ps.mu.Unlock()
	ctx, cancel := context.WithCancel(ps.ctx)
	hub := media.NewHub(media.HubOptions{})
	connected := make(chan struct{})
	ps.active.Add(1)
	go func() {
		defer ps.wg.Done()
		defer hub.Close() // which ends the session
		defer ps.active.Add(-1)
		defer x.Close()
		select {
		case <-connected:
		case <-ctx.Done():
			return // the offer failed, or the viewer never connected
		}
		st, err := playback.Play(ctx, x, hub, playback.Options{})
		if err != nil {
			ps.log.Warn("camd: playback failed", "err", err)
		} else {
			ps.log.Debug("camd: playback done", "video_frames", st.Video, "audio_packets", st.Audio, "duration", st.Duration)
		}
		select {
		case <-ctx.Done():
		case <-time.After(playbackEndGrace):
		}
	}()
	return whep.Feed{
		Hub:     hub,
		Start:   func() { close(connected) },
		Stopped: cancel,
	}, nil
}

// close stops every playback and waits until none reads the recordings.
// It is safe to call twice.
func (ps *playbacks) close() {
	ps.mu.Lock()
	ps.cancel()
	ps.mu.Unlock()
	ps.wg.Wait()
}
