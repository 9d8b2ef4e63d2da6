package board

import (
	"context"
	"sync"
	"time"
)

// ResetHold is how long the pair button is held for a factory reset.
const ResetHold = 10 * time.Second

// WatchOptions say what a Watcher reports. The zero value means defaults and
// no callbacks. Callbacks run on Run's goroutine, one at a time.
type WatchOptions struct {
	// Debounce is how long the input must hold a level before it counts
	// (default 30 ms).
	Debounce time.Duration
	// Hold is how long a press lasts before OnHold (0: never).
	Hold time.Duration
	// Poll bounds how long a wait for an edge lasts before Run checks
	// whether to stop (default 250 ms).
	Poll time.Duration
	// Leading reports a press on its first edge instead of once it held
	// Debounce: the window that follows only swallows the contacts'
	// bounces, and the release still counts once it held Debounce. A
	// doorbell rings 30 ms sooner; the price is that a glitch on the
	// line (a spike shorter than Debounce) is a press too, where the
	// default ignores it.
	Leading bool

	// OnChange receives every debounced change of level.
	OnChange func(active bool)
	// OnDown is a button going down; OnPress a button released before
	// Hold; OnHold a button held for Hold (it fires while the button is
	// still down, and no OnPress follows). A button that is down when
	// the Watcher is made (held through a restart) reports nothing until
	// it has been released.
	OnDown, OnPress, OnHold func()
}

func (o WatchOptions) withDefaults() WatchOptions {
	if o.Debounce <= 0 {
		o.Debounce = DefaultDebounce
	}
	if o.Poll <= 0 {
		o.Poll = 250 * time.Millisecond
	}
	return o
}

// Watcher debounces an input and reports its changes and button gestures.
type Watcher struct {
	in   Input
	opts WatchOptions
	s    *button
}

// NewWatcher reads the input's level now: a button already down is held
// through a restart and reports nothing until released.
func NewWatcher(in Input, opts WatchOptions) *Watcher {
	opts = opts.withDefaults()
	return &Watcher{in: in, opts: opts, s: newButton(in.Active(), opts)}
}

// Run reports until ctx ends. Call it once.
func (w *Watcher) Run(ctx context.Context) {
	in, s := w.in, w.s
	edges := make(chan struct{}, 1)
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wg.Go(func() {
		for ctx.Err() == nil {
			if in.WaitForEdge(w.opts.Poll) {
				select {
				case edges <- struct{}{}:
				default:
				}
			}
		}
	})

	s.observe(in.Active(), time.Now())
	for {
		var (
			timer *time.Timer
			fire  <-chan time.Time
		)
		if next := s.deadline(); !next.IsZero() {
			timer = time.NewTimer(max(time.Until(next), time.Nanosecond))
			fire = timer.C
		}
		select {
		case <-ctx.Done():
			if timer != nil {
				timer.Stop()
			}
			return
		case <-edges:
			s.observe(in.Active(), time.Now())
		case <-fire:
			s.tick(in.Active(), time.Now())
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// button is the debouncing and gesture state machine: observe is fed the
// raw level at each edge, tick at each deadline.
type button struct {
	opts WatchOptions

	stable  bool      // debounced level
	settles time.Time // when the raw level counts; zero when settled

	armed  bool // released since the Watcher was made
	down   bool // a press in progress
	downAt time.Time
	held   bool // OnHold fired for this press
}

func newButton(active bool, opts WatchOptions) *button {
	return &button{opts: opts, stable: active, armed: !active}
}

// deadline is the next time tick must run, or zero.
func (b *button) deadline() time.Time {
	next := b.settles
	if b.down && !b.held && b.opts.Hold > 0 {
		if h := b.downAt.Add(b.opts.Hold); next.IsZero() || h.Before(next) {
			next = h
		}
	}
	return next
}

// observe notes a raw level: any edge restarts the debounce window. With
// Leading, the first edge of a press from a settled release counts at
// once, and its window only swallows the bounces.
func (b *button) observe(raw bool, now time.Time) {
	if raw == b.stable && b.settles.IsZero() {
		return
	}
	if b.opts.Leading && raw && !b.stable && b.armed && b.settles.IsZero() {
		b.settles = now.Add(b.opts.Debounce)
		b.change(raw, now)
		return
	}
	b.settles = now.Add(b.opts.Debounce)
}

// tick runs the deadlines that are due.
func (b *button) tick(raw bool, now time.Time) {
	if b.down && !b.held && b.opts.Hold > 0 && !now.Before(b.downAt.Add(b.opts.Hold)) {
		b.held = true
		call(b.opts.OnHold)
	}
	if b.settles.IsZero() || now.Before(b.settles) {
		return
	}
	b.settles = time.Time{}
	if raw == b.stable {
		return
	}
	b.change(raw, now)
}

// change makes raw the debounced level, and reports it.
func (b *button) change(raw bool, now time.Time) {
	b.stable = raw
	if b.opts.OnChange != nil {
		b.opts.OnChange(raw)
	}
	switch {
	case raw && b.armed:
		b.down, b.downAt, b.held = true, now, false
		call(b.opts.OnDown)
	case !raw:
		if b.down && !b.held {
			call(b.opts.OnPress)
		}
		b.down, b.armed = false, true
	}
}

func call(f func()) {
	if f != nil {
		f()
	}
}
