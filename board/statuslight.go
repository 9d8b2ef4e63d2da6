package board

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Condition is a state the status LED shows. Several can hold at once;
// the LED shows the most important.
type Condition uint8

// Conditions, from the least to the most important.
const (
	// Recording: mostly on, with a short blink every 2 s.
	Recording Condition = 1 << iota
	// Unpaired: slow blink (1 s on, 1 s off).
	Unpaired
	// Pairing: the pairing window is open; fast blink (200 ms).
	Pairing
	// Failure: something needs the owner (a source that keeps failing,
	// storage full); three quick flashes, then a pause.
	Failure
	// Ringing: a doorbell call rings; rapid blink (100 ms), so the
	// visitor sees it ring.
	Ringing
)

// Pattern is a blink pattern: durations alternately on and off, starting
// on, repeated. An empty pattern is off; a single duration is steady on.
type Pattern []time.Duration

// PatternFor is what the LED shows under the given conditions: the
// pattern of the most important one, or steady on when none holds (the
// camera runs, paired, not recording).
func PatternFor(c Condition) Pattern {
	switch {
	case c&Ringing != 0:
		return Pattern{100 * time.Millisecond, 100 * time.Millisecond}
	case c&Failure != 0:
		return Pattern{100 * time.Millisecond, 150 * time.Millisecond, 100 * time.Millisecond, 150 * time.Millisecond, 100 * time.Millisecond, 1400 * time.Millisecond}
	case c&Pairing != 0:
		return Pattern{200 * time.Millisecond, 200 * time.Millisecond}
	case c&Unpaired != 0:
		return Pattern{time.Second, time.Second}
	case c&Recording != 0:
		return Pattern{1900 * time.Millisecond, 100 * time.Millisecond}
	}
	return Pattern{time.Second}
}

// StatusLightOptions configure a StatusLight. The zero value means
// defaults.
type StatusLightOptions struct {
	Logger *slog.Logger
}

// StatusLight plays the pattern of the current conditions on an LED. Its
// methods are safe to call from several goroutines.
type StatusLight struct {
	led Output
	log *slog.Logger

	mu      sync.Mutex
	conds   Condition
	enabled bool
	changed chan struct{}
}

// NewStatusLight returns a status light for led, enabled, showing no
// condition. Nothing lights until Run.
func NewStatusLight(led Output, opts StatusLightOptions) *StatusLight {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &StatusLight{led: led, log: opts.Logger, enabled: true, changed: make(chan struct{}, 1)}
}

// Set turns a condition on or off.
func (s *StatusLight) Set(c Condition, on bool) {
	s.mu.Lock()
	old := s.conds
	if on {
		s.conds |= c
	} else {
		s.conds &^= c
	}
	changed := old != s.conds // read under the lock: Set runs from several goroutines
	s.mu.Unlock()
	if changed {
		s.poke()
	}
}

// SetEnabled is the owner's "status LED" setting. Disabled, the LED stays
// dark except while a call rings or the pairing window is open (someone
// at the camera pressed its button and needs to see it respond) or on a
// failure.
func (s *StatusLight) SetEnabled(on bool) {
	s.mu.Lock()
	changed := s.enabled != on
	s.enabled = on
	s.mu.Unlock()
	if changed {
		s.poke()
	}
}

// Pattern is what the LED shows now.
func (s *StatusLight) Pattern() Pattern {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.enabled && s.conds&(Ringing|Pairing|Failure) == 0 {
		return nil
	}
	return PatternFor(s.conds)
}

func (s *StatusLight) poke() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// Run plays the patterns until ctx ends, then turns the LED off.
func (s *StatusLight) Run(ctx context.Context) {
	defer s.set(false)
	for {
		p := s.Pattern()
		if !s.play(ctx, p) {
			return
		}
	}
}

// play runs pattern p from its start until the conditions change (true)
// or ctx ends (false).
func (s *StatusLight) play(ctx context.Context, p Pattern) bool {
	if len(p) <= 1 {
		s.set(len(p) == 1)
		select {
		case <-ctx.Done():
			return false
		case <-s.changed:
			return true
		}
	}
	for i := 0; ; i = (i + 1) % len(p) {
		s.set(i%2 == 0)
		t := time.NewTimer(p[i])
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-s.changed:
			t.Stop()
			return true
		case <-t.C:
		}
	}
}

func (s *StatusLight) set(on bool) {
	if err := s.led.Set(on); err != nil {
		s.log.Warn("board: status LED", "err", err)
	}
}
