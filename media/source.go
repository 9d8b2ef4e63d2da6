package media

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// Source produces encoded frames. Run publishes into pub until ctx ends
// (return ctx.Err() or nil) or the source fails or runs out (return an
// error, or io.EOF for a stream that ended). The supervisor restarts it.
type Source interface {
	Info() SourceInfo
	Run(ctx context.Context, pub Publisher) error
}

// Publisher is what a source sees of its hub.
type Publisher interface {
	// Publish hands over one encoded frame; it never blocks.
	Publish(f *Frame)
	// KeyframeRequested reports, and clears, a pending keyframe request.
	// Encoding sources call it before encoding each frame.
	KeyframeRequested() bool
	// TargetBitrate is the bitrate viewers' bandwidth estimates ask for, in
	// bits per second, or 0 for the configured default.
	TargetBitrate() int
}

var _ Publisher = (*Hub)(nil)

// SuperviseOptions tune Supervise. The zero value means defaults.
type SuperviseOptions struct {
	// MinPause is the pause before the first restart (default 1 s); it
	// doubles after each quick failure up to MaxPause (default 30 s).
	MinPause, MaxPause time.Duration
	// Healthy is how long a run must last for the pause to reset
	// (default 30 s).
	Healthy time.Duration
	Logger  *slog.Logger
}

// Supervise runs src into hub until ctx ends, restarting it after a pause
// whenever it fails or ends. Each run begins a new epoch in the hub.
func Supervise(ctx context.Context, src Source, hub *Hub, opts SuperviseOptions) {
	if opts.MinPause <= 0 {
		opts.MinPause = time.Second
	}
	if opts.MaxPause <= 0 {
		opts.MaxPause = 30 * time.Second
	}
	if opts.Healthy <= 0 {
		opts.Healthy = 30 * time.Second
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	pause := opts.MinPause
	for {
		info := src.Info()
		hub.Begin(info)
		log.Info("media: source started", "source", info.Name)
		start := time.Now()
		err := src.Run(ctx, hub)
		if ctx.Err() != nil {
			log.Info("media: source stopped", "source", info.Name)
			return
		}
		if time.Since(start) >= opts.Healthy {
			pause = opts.MinPause
		}
		if err == nil {
			err = errors.New("media: source ended")
		}
		log.Warn("media: source failed; restarting", "source", info.Name, "err", err, "pause", pause)
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
		pause = min(pause*2, opts.MaxPause)
	}
}
