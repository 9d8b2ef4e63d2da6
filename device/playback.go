package device

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/camd-project/camd/media"
	"github.com/camd-project/camd/media/playback"
	"github.com/camd-project/camd/media/whep"
	"github.com/camd-project/camd/storage/recordings"
)

// playbackEndGrace is how long a played-back session stays after the
// recording's last frame, so that the viewer shows it before the
// connection closes.
const playbackEndGrace = time.Second

// playbacks are the recordings being played to WebRTC viewers.
type playbacks struct {
	mu     sync.Mutex
	runs   map[*playbackRun]struct{}
	closed bool
	wg     sync.WaitGroup
}

// playbackRun is one recording played to one viewer: it waits for the
// viewer to connect, plays, and ends the session a moment after the end.
type playbackRun struct {
	x      *recordings.Export
	hub    *media.Hub
	ctx    context.Context
	cancel context.CancelFunc
	end    func() // ends the WHEP session

	mu    sync.Mutex
	state int // runWaiting, runPlaying, runDone
}

const (
	runWaiting = iota
	runPlaying
	runDone
)

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
	run := &playbackRun{x: x, hub: media.NewHub(media.HubOptions{})}
	run.ctx, run.cancel = context.WithCancel(context.Background())
	ps.mu.Lock()
	if ps.closed {
		ps.mu.Unlock()
		x.Close()
		jsonError(w, http.StatusServiceUnavailable, "recordings: shutting down")
		return
	}
	if ps.runs == nil {
		ps.runs = map[*playbackRun]struct{}{}
	}
	ps.runs[run] = struct{}{}
	ps.wg.Add(1)
	ps.mu.Unlock()
	ended := make(chan struct{})
	run.end = d.whep.HandleFeedOffer(w, r, whep.Feed{
		Hub: run.hub,
		Start: func() {
			go func() {
				<-ended // run.end is set
				d.play(run)
			}()
		},
		Stopped: func() { d.stopPlayback(run) },
	})
	close(ended)
}

// play plays run's recording, then ends its session.
func (d *Daemon) play(run *playbackRun) {
	run.mu.Lock()
	if run.state != runWaiting {
		run.mu.Unlock()
		return
	}
	run.state = runPlaying
	run.mu.Unlock()
	st, err := playback.Play(run.ctx, run.x, run.hub, playback.Options{})
	run.x.Close()
	run.mu.Lock()
	run.state = runDone
	run.mu.Unlock()
	d.forgetPlayback(run)
	if err != nil {
		d.log.Warn("camd: playback failed", "err", err)
	} else {
		d.log.Debug("camd: playback done", "video_frames", st.Video, "audio_packets", st.Audio, "duration", st.Duration)
	}
	select {
	case <-run.ctx.Done():
	case <-time.After(playbackEndGrace):
	}
	run.hub.Close()
	if run.end != nil {
		run.end()
	}
}

// stopPlayback ends a run for whatever reason: a run still waiting for
// its viewer is released here, a playing one stops at its next frame.
func (d *Daemon) stopPlayback(run *playbackRun) {
	run.cancel()
	run.mu.Lock()
	waiting := run.state == runWaiting
	if waiting {
		run.state = runDone
	}
	run.mu.Unlock()
	if waiting {
		run.x.Close() // never played: nobody else reads it
		run.hub.Close()
		d.forgetPlayback(run)
	}
}

// forgetPlayback notes that run no longer reads the recordings.
func (d *Daemon) forgetPlayback(run *playbackRun) {
	ps := &d.recording.playbacks
	ps.mu.Lock()
	delete(ps.runs, run)
	ps.mu.Unlock()
	ps.wg.Done()
}

// closePlaybacks stops every playback and waits until none reads the
// recordings.
func (d *Daemon) closePlaybacks() {
	ps := &d.recording.playbacks
	ps.mu.Lock()
	ps.closed = true
	runs := make([]*playbackRun, 0, len(ps.runs))
	for run := range ps.runs {
		runs = append(runs, run)
	}
	ps.mu.Unlock()
	for _, run := range runs {
		d.stopPlayback(run)
	}
	ps.wg.Wait()
}
