package device

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/camd-project/camd/media"
	"github.com/camd-project/camd/media/playback"
	"github.com/camd-project/camd/media/whep"
)

// playbackEndGrace is how long a played-back session stays after the
// recording's last frame, so that the viewer shows it before the
// connection closes.
const playbackEndGrace = time.Second

// playbacks are the recordings being played to WebRTC viewers. Each is one
// goroutine that owns its export and its hub.
type playbacks struct {
	mu     sync.Mutex
	ctx    context.Context // cancelled when the recordings close
	cancel context.CancelFunc
	wg     sync.WaitGroup
	active atomic.Int32
}

// context returns the playbacks' context, made on first use.
func (ps *playbacks) context() context.Context {
	if ps.ctx == nil {
		ps.ctx, ps.cancel = context.WithCancel(context.Background())
	}
	return ps.ctx
}

// handlePlayback answers a WHEP offer (RFC 9725, as POST /api/v1/whep)
// with a session that plays the recordings of ?from&to in real time from
// the keyframe at or before from; PATCH and DELETE go to
// /api/v1/recordings/whep/{id}. The session ends a second after the
// recording does.
func (d *Daemon) handlePlayback(w http.ResponseWriter, r *http.Request) {
	x := d.openExport(w, r)
	if x == nil {
		return
	}
	ps := &d.recording.playbacks
	ps.mu.Lock()
	parent := ps.context()
	if parent.Err() != nil {
		ps.mu.Unlock()
		x.Close()
		jsonError(w, http.StatusServiceUnavailable, "recordings: shutting down")
		return
	}
	ps.wg.Add(1)
	ps.mu.Unlock()
	ctx, cancel := context.WithCancel(parent)
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
			d.log.Warn("camd: playback failed", "err", err)
		} else {
			d.log.Debug("camd: playback done", "video_frames", st.Video, "audio_packets", st.Audio, "duration", st.Duration)
		}
		select {
		case <-ctx.Done():
		case <-time.After(playbackEndGrace):
		}
	}()
	d.whep.HandleFeedOffer(w, r, whep.Feed{
		Hub:     hub,
		Start:   func() { close(connected) },
		Stopped: cancel,
	})
}

// closePlaybacks stops every playback and waits until none reads the
// recordings.
func (d *Daemon) closePlaybacks() {
	ps := &d.recording.playbacks
	ps.mu.Lock()
	ps.context()
	ps.cancel()
	ps.mu.Unlock()
	ps.wg.Wait()
}
