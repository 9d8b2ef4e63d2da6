package device

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/camd-project/camd/media"
)

// liveSource is the media source as the owner's settings shape it: it
// runs the current source, switches to a rebuilt one when a setting the
// source was built with changes (resolution, frame rate), and caps the
// encoder's bitrate at the quality setting. The supervisor sees one
// source throughout.
type liveSource struct {
	mu      sync.Mutex
	cur     media.Source
	stop    context.CancelFunc // ends the current source's run
	swapped bool               // cur changed during the run

	// ceiling is the bitrate setting in bits per second (0: none).
	ceiling atomic.Int64
}

var _ media.Source = (*liveSource)(nil)

func newLiveSource(src media.Source, ceiling int) *liveSource {
	l := &liveSource{cur: src}
	l.ceiling.Store(int64(ceiling))
	return l
}

// current is the source running now (or next).
func (l *liveSource) current() media.Source {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cur
}

func (l *liveSource) Info() media.SourceInfo { return l.current().Info() }

// replace switches to src: the running source stops and src starts in a
// new epoch of the hub, without the supervisor's pause.
func (l *liveSource) replace(src media.Source) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cur, l.swapped = src, true
	if l.stop != nil {
		l.stop()
	}
}

// setCeiling changes the bitrate cap from the next frame on.
func (l *liveSource) setCeiling(bps int) { l.ceiling.Store(int64(bps)) }

// beginner is the hub's side of a source restart.
type beginner interface{ Begin(media.SourceInfo) }

// Run runs the current source until ctx ends or it fails, moving on to
// each replacement.
func (l *liveSource) Run(ctx context.Context, pub media.Publisher) error {
	capped := cappedPublisher{Publisher: pub, ceiling: &l.ceiling}
	l.mu.Lock()
	l.swapped = false
	l.mu.Unlock()
	for {
		runCtx, stop := context.WithCancel(ctx)
		l.mu.Lock()
		src := l.cur
		l.stop = stop
		l.mu.Unlock()
		err := src.Run(runCtx, capped)
		stop()
		l.mu.Lock()
		swapped := l.swapped
		l.swapped, l.stop = false, nil
		next := l.cur
		l.mu.Unlock()
		if ctx.Err() != nil || !swapped {
			return err
		}
		if b, ok := pub.(beginner); ok {
			b.Begin(next.Info())
		}
	}
}

// cappedPublisher lowers the bitrate target to the quality setting: with
// no viewers' estimate the encoder aims at the setting, with one it aims
// at the lower of the two.
type cappedPublisher struct {
	media.Publisher
	ceiling *atomic.Int64
}

func (p cappedPublisher) TargetBitrate() int {
	t, c := p.Publisher.TargetBitrate(), int(p.ceiling.Load())
	if c > 0 && (t == 0 || t > c) {
		return c
	}
	return t
}
