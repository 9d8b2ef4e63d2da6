package recorder

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/camd-project/camd/media"
	"github.com/camd-project/camd/media/fmp4"
	"github.com/camd-project/camd/storage/recordings"
)

// Mode says when the recorder records.
type Mode string

// Recording modes.
const (
	Continuous Mode = "continuous"
	Motion     Mode = "motion"
	Off        Mode = "off"
)

// ParseMode reads a mode by name.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case Continuous, Motion, Off:
		return m, nil
	}
	return "", fmt.Errorf("recorder: mode %q is not one of continuous, motion, off", s)
}

// Span is a motion span: from the first motion to the end of the
// post-roll after the last. End is zero while it lasts.
type Span struct {
	ID         uint64
	Start, End time.Time
	Cause      string
}

// Options tune a Recorder. The zero value means defaults.
type Options struct {
	// Stream is the stream number in the store (default 1).
	Stream uint32
	// Mode is the mode at start (default continuous).
	Mode Mode
	// PreRoll is how much recording before the motion the recorder keeps
	// in memory (default 5 s); PostRoll how long it goes on after the
	// motion ends (default 10 s).
	PreRoll, PostRoll time.Duration
	// Fragment tunes the fragments.
	Fragment fmp4.Options
	// Queue bounds the fragments waiting for the store (default 8); when
	// the store falls that far behind, fragments are dropped. The writer
	// hands the store every fragment waiting at once (one commit), so
	// the queue fills only when one commit takes that long.
	Queue int
	// OnSpan is called when a motion span starts (End zero) and when it
	// ends; it must not block.
	OnSpan func(Span)
	// PreRollWhenOff keeps the pre-roll in memory even while the mode is
	// off (the recorder stays subscribed, writing nothing), so that a
	// forced clip (Force: a doorbell's missed call) has the seconds
	// before it in every mode.
	PreRollWhenOff bool
	Logger         *slog.Logger
}

// hub is what the recorder needs of a media.Hub.
type hub interface {
	Subscribe(media.ConsumerOptions) *media.Consumer
	Info() media.SourceInfo
}

// store is what the recorder needs of a recordings.Store.
type store interface {
	AppendBatch([]recordings.Fragment) (int, error)
}

// Recorder is the hub consumer that cuts the stream into fragments and
// hands the ones its mode keeps to the store.
type Recorder struct {
	hub   hub
	store store
	opts  Options
	log   *slog.Logger

	modeCh chan struct{} // wakes Run on a mode change

	mu         sync.Mutex
	mode       Mode
	causes     map[string]time.Time // active motion causes → when each ends (zero: until cleared)
	span       *Span                // the open motion span
	spanEnd    time.Time            // end of the last closed span (incl. post-roll)
	spanStart  time.Time            // start of the open or last span
	nextSpanID uint64
	holdTimer  *time.Timer // fires when the first held cause runs out
	postTimer  *time.Timer
	forced     []window // ranges recorded whatever the mode (Force)
	closed     bool
	stats      Stats
}

// window is a range of time.
type window struct{ from, to time.Time }

// Force records from..to whatever the mode, motion or not: from may lie
// up to the pre-roll in the past (kept in memory in motion mode, and in
// every mode with Options.PreRollWhenOff). A doorbell's press keeps its
// clip this way even when recording is off.
func (r *Recorder) Force(from, to time.Time) {
	r.mu.Lock()
	r.forced = append(r.forced, window{from, to})
	r.mu.Unlock()
}

// forcedFor reports whether a fragment from start to end overlaps a
// forced range, and from when the pre-roll should be written; ranges
// that ended before start are forgotten.
func (r *Recorder) forcedFor(start, end time.Time) (record bool, from time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	keep := r.forced[:0]
	for _, w := range r.forced {
		if !w.to.After(start) {
			continue
		}
		keep = append(keep, w)
		if w.from.Before(end) && (!record || w.from.Before(from)) {
			record, from = true, w.from
		}
	}
	clear(r.forced[len(keep):])
	r.forced = keep
	return record, from
}

// Stats counts what the recorder did.
type Stats struct {
	Mode      Mode      `json:"mode"`
	Motion    bool      `json:"motion"`
	Recording bool      `json:"recording"`
	Fragments uint64    `json:"fragments"`
	Bytes     int64     `json:"bytes"`
	Dropped   uint64    `json:"fragments_dropped"`
	Failed    uint64    `json:"fragments_failed"`
	LastEnd   time.Time `json:"last_end,omitzero"`
	LastError string    `json:"last_error,omitempty"`
}

// New returns a recorder; Run starts it.
func New(h hub, st store, opts Options) *Recorder {
	if opts.Stream == 0 {
		opts.Stream = 1
	}
	if opts.Mode == "" {
		opts.Mode = Continuous
	}
	if opts.PreRoll <= 0 {
		opts.PreRoll = 5 * time.Second
	}
	if opts.PostRoll <= 0 {
		opts.PostRoll = 10 * time.Second
	}
	if opts.Queue <= 0 {
		opts.Queue = 8
	}
	if opts.OnSpan == nil {
		opts.OnSpan = func(Span) {}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Recorder{hub: h, store: st, opts: opts, log: opts.Logger, mode: opts.Mode,
		modeCh: make(chan struct{}, 1), causes: map[string]time.Time{}, nextSpanID: 1}
}

// SetMode changes the mode; off unsubscribes from the hub.
func (r *Recorder) SetMode(m Mode) {
	r.mu.Lock()
	r.mode = m
	r.mu.Unlock()
	select {
	case r.modeCh <- struct{}{}:
	default:
	}
}

// Mode returns the current mode.
func (r *Recorder) Mode() Mode {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mode
}

// SetMotion is the motion detector's input: motion from cause started
// (active) or stopped at at.
func (r *Recorder) SetMotion(cause string, active bool, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if active {
		r.causes[cause] = time.Time{}
	} else {
		delete(r.causes, cause)
	}
	r.updateLocked(at)
}

// Trigger reports motion from outside (a PIR input, an API call) that
// lasts hold from now.
func (r *Recorder) Trigger(cause string, hold time.Duration) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if end, ok := r.causes[cause]; !ok || (!end.IsZero() && end.Before(now.Add(hold))) {
		r.causes[cause] = now.Add(hold)
	}
	r.updateLocked(now)
}

// updateLocked opens a span when a cause is active and schedules its end
// PostRoll after the last cause stopped. One timer re-checks when the
// first cause held for a time runs out.
func (r *Recorder) updateLocked(now time.Time) {
	if r.closed {
		return
	}
	active := false
	var cause string
	var holdEnd time.Time // the first end of a held cause
	for c, end := range r.causes {
		if end.IsZero() || end.After(now) {
			active, cause = true, c
		} else {
			delete(r.causes, c)
			continue
		}
		if !end.IsZero() && (holdEnd.IsZero() || end.Before(holdEnd)) {
			holdEnd = end
		}
	}
	switch {
	case !holdEnd.IsZero() && r.holdTimer == nil:
		r.holdTimer = time.AfterFunc(holdEnd.Sub(now), func() {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.updateLocked(time.Now())
		})
	case !holdEnd.IsZero():
		r.holdTimer.Reset(holdEnd.Sub(now))
	case r.holdTimer != nil:
		r.holdTimer.Stop()
	}
	if active {
		if r.postTimer != nil {
			r.postTimer.Stop()
			r.postTimer = nil
		}
		if r.span == nil {
			r.span = &Span{ID: r.nextSpanID, Start: now, Cause: cause}
			r.nextSpanID++
			r.spanStart = now
			r.opts.OnSpan(*r.span)
		}
		return
	}
	if r.span != nil && r.postTimer == nil {
		end := now.Add(r.opts.PostRoll)
		r.postTimer = time.AfterFunc(r.opts.PostRoll, func() {
			r.mu.Lock()
			defer r.mu.Unlock()
			if r.span == nil || len(r.causes) > 0 || r.closed {
				return
			}
			s := *r.span
			s.End = end
			r.span, r.postTimer, r.spanEnd = nil, nil, end
			r.opts.OnSpan(s)
		})
	}
}

// window reports whether a fragment from start to end falls in motion
// recording, and from when the pre-roll should be written.
func (r *Recorder) window(start time.Time) (record bool, from time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.span != nil {
		return true, r.spanStart.Add(-r.opts.PreRoll)
	}
	if !r.spanEnd.IsZero() && start.Before(r.spanEnd) {
		return true, r.spanStart.Add(-r.opts.PreRoll)
	}
	return false, time.Time{}
}

// Run records until ctx ends. While the mode is off it holds no
// subscription and does nothing (unless Options.PreRollWhenOff).
func (r *Recorder) Run(ctx context.Context) {
	for ctx.Err() == nil {
		if r.Mode() == Off && !r.opts.PreRollWhenOff {
			select {
			case <-ctx.Done():
			case <-r.modeCh:
			}
			continue
		}
		r.consume(ctx)
	}
	r.mu.Lock()
	r.closed = true
	for _, t := range []*time.Timer{r.holdTimer, r.postTimer} {
		if t != nil {
			t.Stop()
		}
	}
	r.mu.Unlock()
}

// consume subscribes to the hub and records until ctx ends or the mode
// turns off.
func (r *Recorder) consume(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	var watcher sync.WaitGroup
	defer watcher.Wait()
	defer cancel()
	c := r.hub.Subscribe(media.ConsumerOptions{Name: "recorder", QueueFrames: 512})
	defer c.Close()
	watcher.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-r.modeCh:
				if r.Mode() == Off && !r.opts.PreRollWhenOff {
					cancel()
					return
				}
			}
		}
	})

	writes := make(chan recordings.Fragment, r.opts.Queue)
	var wg sync.WaitGroup
	wg.Go(func() { r.write(writes) })
	defer func() {
		close(writes)
		wg.Wait()
	}()

	fr := fmp4.New(r.opts.Fragment)
	var ring []*fmp4.Fragment // pre-roll, in motion mode (and off, with PreRollWhenOff)
	recording := false
	handle := func(f *fmp4.Fragment) {
		mode := r.Mode()
		record := mode == Continuous
		var from time.Time
		if mode == Motion {
			record, from = r.window(f.Start)
		}
		if forced, ffrom := r.forcedFor(f.Start, f.End()); forced && !record {
			record, from = true, ffrom
		}
		if record {
			for _, p := range ring {
				if p.End().After(from) {
					r.enqueue(writes, p)
				}
			}
			ring = ring[:0]
			r.enqueue(writes, f)
		} else {
			ring = append(ring, f)
			for len(ring) > 0 && f.End().Sub(ring[0].End()) > r.opts.PreRoll+fr.Options().Max {
				ring[0] = nil
				ring = ring[1:]
			}
		}
		if record != recording {
			recording = record
			r.mu.Lock()
			r.stats.Recording = record
			r.mu.Unlock()
		}
	}
	for {
		f, _, err := c.Next(ctx)
		if err != nil {
			if last := fr.Flush(); last != nil {
				handle(last)
			}
			if !errors.Is(err, context.Canceled) && !errors.Is(err, media.ErrClosed) {
				r.log.Warn("recorder: stopped", "err", err)
			}
			if errors.Is(err, media.ErrClosed) {
				<-ctx.Done() // the hub is gone: wait for the daemon to stop
			}
			return
		}
		if frag := fr.Push(f); frag != nil {
			handle(frag)
		}
		if fr.WantsKeyframe() && r.hub.Info().ForcesKeyframes {
			c.RequestKeyframe()
		}
	}
}

// enqueue hands a fragment to the writer, or drops it when the store is
// that far behind.
func (r *Recorder) enqueue(writes chan<- recordings.Fragment, f *fmp4.Fragment) {
	rf := recordings.Fragment{
		Stream: r.opts.Stream, Start: f.Start, Duration: f.Duration, Key: f.Key, Audio: f.AudioFrames > 0,
		Init: f.Init.Data, Data: f.Data,
	}
	select {
	case writes <- rf:
	default:
		r.mu.Lock()
		r.stats.Dropped++
		r.mu.Unlock()
	}
}

// write appends fragments to the store, with one commit in flight at a
// time: a fragment that arrives while nothing is being written is
// written at once, alone, and those that arrive during a commit wait for
// it and are then written together, in one commit (AppendBatch). A slow
// card so costs fewer commits rather than a queue that grows: a fragment
// waits for at most the commit in flight and its own, and a power cut
// loses the fragment being built and at most those two commits' worth,
// whatever the queue held. Each fragment counts as recorded only once
// its commit returned. The store pauses recording and tells the owner
// when the card fails; the recorder only counts.
func (r *Recorder) write(writes <-chan recordings.Fragment) {
	batch := make([]recordings.Fragment, 0, r.opts.Queue+1)
	for f := range writes {
		batch = append(batch[:0], f)
	drain:
		for {
			select {
			case g, ok := <-writes:
				if !ok {
					break drain
				}
				batch = append(batch, g)
			default:
				break drain
			}
		}
		r.commit(batch)
		clear(batch) // let the fragments' data go
	}
}

// commit writes a batch and counts what the store stored, refused and
// dropped.
func (r *Recorder) commit(batch []recordings.Fragment) {
	for len(batch) > 0 {
		n, err := r.store.AppendBatch(batch)
		r.mu.Lock()
		for _, f := range batch[:n] {
			r.stats.Fragments++
			r.stats.Bytes += int64(len(f.Data))
			r.stats.LastEnd = f.Start.Add(f.Duration)
			r.stats.LastError = ""
		}
		if err == nil {
			r.mu.Unlock()
			return
		}
		r.stats.LastError = err.Error()
		if errors.Is(err, recordings.ErrFragment) {
			// That fragment alone: the ones after it go on.
			r.stats.Failed++
			r.mu.Unlock()
			batch = batch[n+1:]
			continue
		}
		r.stats.Failed += uint64(len(batch) - n)
		r.mu.Unlock()
		return
	}
}

// Stats returns the recorder's state and counters.
func (r *Recorder) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.stats
	s.Mode = r.mode
	s.Motion = r.span != nil
	if s.Mode == Continuous {
		s.Recording = true
	} else if s.Mode == Off {
		s.Recording = false
	}
	return s
}
