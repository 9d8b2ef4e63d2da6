package whep

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"

	"github.com/camd-project/camd/media"
)

// fanout sends the live stream to its viewers from one goroutine per
// core (a shard each) instead of one goroutine per viewer: a frame wakes
// a shard once, and the shard writes it to each of its viewers in turn,
// all under one cork, so that the packets of many viewers leave in a few
// sendmmsg calls (batchConn) instead of one call per viewer.
//
// Each viewer keeps its own hub queue: a viewer whose queue overflows
// drops frames up to the next keyframe, as before, and a write never
// waits on a viewer (UDP, no congestion window), so one viewer cannot
// hold the frame path of the others. The cached group of pictures that
// a passthrough viewer starts with is paced per viewer (replayBitrate)
// by a deadline, not a sleep.
type fanout struct {
	batch         *batchConn
	replayBitrate int
	shards        []*shard
}

// shard is one sending goroutine and the viewers it serves.
type shard struct {
	fo *fanout
	// notify receives a token when a viewer's queue gets a frame or
	// closes (media.ConsumerOptions.Notify), and when a viewer is added.
	notify chan struct{}
	load   atomic.Int32 // viewers given to the shard, for balance
	// running: run has been started (Server.shard, under its lock).
	running bool

	mu      sync.Mutex
	outlets []*outlet

	seqs []uint16 // pass's, for the packets to resend
}

// outlet is one viewer of a shard.
type outlet struct {
	c            *media.Consumer
	video, audio *track
	// sent is called after each video frame written, with whether the
	// viewer had caught up with live then.
	sent func(f *media.Frame, caughtUp bool)
	// done is called once, from the shard, when the viewer leaves it:
	// its consumer closed (ErrClosed) or a write failed (errSend).
	done func(err error)

	caughtUp  bool
	notBefore time.Time // the next replayed frame is due
	pace      replayPacer

	// sh is the outlet's shard; nacked the sequence numbers the viewer's
	// NACKs asked for (nack, from SRTCP's read loop) until the shard
	// resends them, at most historySize.
	sh      *shard
	nmu     sync.Mutex
	nacked  []uint16
	pending atomic.Bool // nacked holds some
}

// nack queues the packets p asks for and wakes the shard to resend them.
func (o *outlet) nack(p *rtcp.TransportLayerNack) {
	o.nmu.Lock()
	for _, pair := range p.Nacks {
		for _, seq := range pair.PacketList() {
			if len(o.nacked) < historySize {
				o.nacked = append(o.nacked, seq)
			}
		}
	}
	o.pending.Store(len(o.nacked) > 0)
	o.nmu.Unlock()
	o.sh.poke()
}

// takeNACKed moves the queued sequence numbers to dst[:0].
func (o *outlet) takeNACKed(dst []uint16) []uint16 {
	if !o.pending.Load() {
		return dst[:0]
	}
	o.nmu.Lock()
	defer o.nmu.Unlock()
	dst = append(dst[:0], o.nacked...)
	o.nacked = o.nacked[:0]
	o.pending.Store(false)
	return dst
}

func newFanout(batch *batchConn, replayBitrate int) *fanout {
	fo := &fanout{batch: batch, replayBitrate: replayBitrate}
	for range runtime.GOMAXPROCS(0) {
		fo.shards = append(fo.shards, &shard{fo: fo, notify: make(chan struct{}, 1)})
	}
	return fo
}

// pick returns the shard with the fewest viewers and counts one more on
// it; the viewer subscribes with its notify channel and is added once
// its tracks are bound.
func (fo *fanout) pick() *shard {
	best := fo.shards[0]
	for _, sh := range fo.shards[1:] {
		if sh.load.Load() < best.load.Load() {
			best = sh
		}
	}
	best.load.Add(1)
	return best
}

// add starts sending o's frames. The shard has been picked for it, and
// its consumer notifies the shard.
func (sh *shard) add(o *outlet) {
	sh.mu.Lock()
	sh.outlets = append(sh.outlets, o)
	sh.mu.Unlock()
	sh.poke()
}

// release gives back a viewer that pick counted and add never got.
func (sh *shard) release() { sh.load.Add(-1) }

func (sh *shard) poke() {
	select {
	case sh.notify <- struct{}{}:
	default:
	}
}

func (sh *shard) remove(o *outlet) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for i, x := range sh.outlets {
		if x == o {
			sh.outlets = append(sh.outlets[:i], sh.outlets[i+1:]...)
			sh.load.Add(-1)
			return
		}
	}
}

// run serves the shard's viewers until stop is closed: at each token it
// writes every frame queued for every viewer, and it wakes again when a
// paced replayed frame is due.
func (sh *shard) run(stop <-chan struct{}) {
	due := time.NewTimer(time.Hour)
	due.Stop()
	defer due.Stop()
	var outlets []*outlet
	for {
		select {
		case <-stop:
			return
		case <-sh.notify:
		case <-due.C:
		}
		sh.mu.Lock()
		outlets = append(outlets[:0], sh.outlets...)
		sh.mu.Unlock()
		if next := sh.pass(outlets); !next.IsZero() {
			due.Reset(time.Until(next))
		}
		clear(outlets)
	}
}

// pass writes what each viewer has queued and returns when the earliest
// paced frame is due (zero: none waits).
func (sh *shard) pass(outlets []*outlet) (next time.Time) {
	sh.fo.batch.cork()
	defer sh.fo.batch.uncork()
	for _, o := range outlets {
		// Repairs first: they are older than anything queued.
		sh.seqs = o.takeNACKed(sh.seqs)
		for _, seq := range sh.seqs {
			o.video.resend(seq)
		}
		wait, err := sh.fo.drain(o)
		if err != nil {
			sh.remove(o)
			o.done(err)
			continue
		}
		if !wait.IsZero() && (next.IsZero() || wait.Before(next)) {
			next = wait
		}
	}
	return next
}

// drain writes o's queued frames. It returns when the next replayed
// frame is due if o must wait for it, and an error once o is done: its
// consumer closed (media.ErrClosed) or a write failed (errSend).
func (fo *fanout) drain(o *outlet) (wait time.Time, err error) {
	for {
		if !o.notBefore.IsZero() {
			if time.Now().Before(o.notBefore) {
				return o.notBefore, nil
			}
			o.notBefore = time.Time{}
		}
		f, replay, err := o.c.TryNext()
		if err != nil || f == nil {
			return time.Time{}, err
		}
		if !o.caughtUp && !replay && o.c.Len() == 0 {
			o.caughtUp = true
		}
		t := o.video
		if f.Kind == media.Audio {
			if t = o.audio; t == nil {
				continue
			}
		}
		if _, err := t.writeFrame(f, replay); err != nil {
			return time.Time{}, fmt.Errorf("%w: %w", errSend, err)
		}
		if replay {
			o.notBefore = o.pace.sent(f, fo.replayBitrate, time.Now())
		}
		if f.Kind == media.Video {
			o.sent(f, o.caughtUp)
		}
	}
}

// replayPause paces the cached group of pictures: faster than real time
// so that the viewer catches up with live, but at bitrate, so that it
// does not overflow the viewer's socket or a Wi-Fi queue. The keyframe
// itself leaves at once.
func replayPause(f *media.Frame, bitrate int) time.Duration {
	return time.Duration(len(f.Data)) * 8 * time.Second / time.Duration(bitrate)
}

// replayPacer says when each frame of a replayed group of pictures is
// due: when the frames before it have had their time at the bitrate,
// counted from the first. A timer fires late (a millisecond or more on a
// busy machine, for each of a GOP's 60 frames), and a due time counted
// from the frame before would add each lateness to the replay; counted
// from the first, a late frame is followed at once by those already due.
type replayPacer struct {
	start time.Time // the first replayed frame left
	spent time.Duration
}

// sent records that f left at now and returns when the next frame is
// due.
func (p *replayPacer) sent(f *media.Frame, bitrate int, now time.Time) time.Time {
	if p.start.IsZero() {
		p.start = now
	}
	p.spent += replayPause(f, bitrate)
	return p.start.Add(p.spent)
}

// waitBound waits until pion has bound the tracks (audio may be nil):
// pion may report the connection connected just before it binds the
// senders (seen under load: the first keyframe failed with errNotBound
// and the viewer got nothing).
func waitBound(ctx context.Context, video, audio *track) error {
	for _, t := range []*track{video, audio} {
		if t == nil {
			continue
		}
		select {
		case <-t.bound:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
