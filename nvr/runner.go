package nvr

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/camd-project/camd/media"
)

// runner pulls one camera again and again: each pull until it fails or
// the camera falls silent, then a pause (backoff), and the camera's
// state and events follow.
type runner struct {
	m      *Manager
	id     string
	hub    *media.Hub
	cancel context.CancelFunc
	done   chan struct{}
	modes  chan Recording // the recording mode the owner changed to

	last     atomic.Int64 // Unix ns of the newest frame of this pull
	frames   atomic.Uint64
	attempts atomic.Uint64
	online   atomic.Bool // the camera's state is Online
}

func (r *runner) run(ctx context.Context, rec record) {
	detach := r.m.opts.Attach(rec.Camera, r.hub)
	defer detach()
	motion := make(chan struct{})
	go func() {
		defer close(motion)
		r.motionLoop(ctx, rec)
	}()
	defer func() { <-motion }() // before detach: no motion after it
	backoff := r.m.opts.MinBackoff
	for {
		before := r.frames.Load()
		err := r.pullOnce(ctx, rec)
		if ctx.Err() != nil {
			return
		}
		if r.frames.Load() > before {
			backoff = r.m.opts.MinBackoff
		}
		wait := backoff
		if errors.Is(err, ErrRefused) {
			r.set(Unauthorized, err)
			wait = r.m.opts.UnauthorizedRetry
		} else {
			r.set(Offline, err)
			backoff = min(backoff*2, r.m.opts.MaxBackoff)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// pullOnce runs one pull, cut off when no frame came for Silence.
func (r *runner) pullOnce(ctx context.Context, rec record) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	r.last.Store(time.Now().UnixNano())
	r.attempts.Add(1)
	silence := r.m.opts.Silence
	watch := make(chan struct{})
	go func() {
		defer close(watch)
		tick := time.NewTicker(silence / 16)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-tick.C:
				if now.Sub(time.Unix(0, r.last.Load())) > silence {
					cancel(fmt.Errorf("%w for %s", errSilent, silence))
					return
				}
			}
		}
	}()
	defer func() { cancel(nil); <-watch }()

	f := newFeed(r.hub, "nvr "+rec.Camera.ID, rec.Camera.Kind == KindCamd, r.frame, func(err error) { cancel(err) })
	log := r.m.log.With("camera", r.id)
	// A viewer that joins asks an ONVIF camera for a keyframe
	// (SetSynchronizationPoint), to go live from it instead of after the
	// cached group of pictures. A camd camera is not asked by a PLI: one
	// whose source cannot make keyframes answers a PLI with its cached
	// group of pictures again, which the NVR would record twice.
	if rec.Camera.Kind == KindONVIF && rec.Secret.Media != "" {
		f.keyframes = make(chan struct{}, 1)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				select {
				case <-ctx.Done():
					return
				case <-f.keyframes:
				}
				if err := onvifSyncPoint(ctx, rec.Secret, r.m.opts.Timeout); err != nil && ctx.Err() == nil {
					log.Debug("nvr: the camera was not asked for a keyframe", "err", err)
				}
			}
		}()
		defer func() { cancel(nil); <-done }()
	}
	var err error
	switch rec.Camera.Kind {
	case KindCamd:
		err = pullCamd(ctx, rec.Camera.Address, rec.Secret, f, log)
	default:
		err = pullRTSP(ctx, rec.Secret.URL, rec.Secret, f, r.m.opts.Timeout, log)
	}
	if cause := context.Cause(ctx); cause != nil && (errors.Is(cause, errSilent) || errors.Is(cause, ErrBadStream) || errors.Is(cause, ErrBFrames)) {
		return cause
	}
	if err == nil {
		err = errors.New("nvr: the stream ended")
	}
	return err
}

// frame notes a frame, without a lock: it runs for every frame on the
// puller's receiving goroutine. The first after a failure makes the
// camera online.
func (r *runner) frame() {
	r.last.Store(time.Now().UnixNano())
	r.frames.Add(1)
	if !r.online.Load() {
		r.set(Online, nil)
	}
}

// set moves the camera to state; a change is logged and, but for the
// first connection, told as an event.
func (r *runner) set(state State, err error) {
	var before State
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	r.online.Store(state == Online)
	c, ok := r.m.update(r.id, func(c *Camera) {
		before = c.State
		if c.State != state {
			c.State, c.Since = state, time.Now()
		}
		if err != nil {
			c.LastError = msg
		}
	})
	if !ok || before == state {
		return
	}
	r.m.log.Info("nvr: camera "+string(state), "camera", r.id, "err", msg)
	switch state {
	case Online:
		if before != Connecting {
			r.m.opts.Event(EventOnline, c, nil)
		}
	case Offline:
		r.m.opts.Event(EventOffline, c, map[string]string{"error": msg})
	case Unauthorized:
		r.m.opts.Event(EventUnauthorized, c, map[string]string{"error": msg})
	}
}
