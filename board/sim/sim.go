// Package sim is the simulated board: every part of a camera board on
// periph.io's gpiotest pins, driven by the real driver (board/hw), so
// camd runs and its tests exercise the board layer on any host. Tests
// script it: Press and Release a button, SetMotion, SetLight; and read
// it: StatusLED, IRLED, Night, IRCutMoves.
//
// A test in a testing/synctest bubble makes the Board inside the bubble:
// its pins' edge channels then belong to the bubble, so a watcher waiting
// for an edge counts as durably blocked and the bubble's clock moves (see
// the board package's documentation).
package sim

import (
	"fmt"
	"sync"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"

	"github.com/camd-project/camd/board"
	"github.com/camd-project/camd/board/hw"
)

// Button names a simulated input.
type Button string

// The simulated inputs.
const (
	PairButton Button = "pair_button"
	Doorbell   Button = "doorbell"
	PIR        Button = "pir"
)

// Options configure New. The zero value means defaults.
type Options struct {
	// Light is the initial light level, 0..1 (default 1, daylight; set
	// NoLight for darkness).
	Light float64
	// NoLight starts in darkness.
	NoLight bool
	// Echo, when set, loops the speaker into the microphone
	// (Board.Microphone): the room's echo, for tests of a call's echo
	// handling.
	Echo *Echo
}

// Profile is the simulated board's profile: every part, on pins named
// SIM_*.
func Profile() *board.Profile {
	return &board.Profile{
		Name:        "sim",
		Description: "simulated board (periph gpiotest pins)",
		Debounce:    board.DefaultDebounce,
		IRCut:       &board.IRCutPins{Day: "SIM_IRCUT_DAY", Night: "SIM_IRCUT_NIGHT", Pulse: board.DefaultPulse},
		IRLED:       &board.Pin{Pin: "SIM_IR_LED"},
		StatusLED:   &board.Pin{Pin: "SIM_STATUS_LED"},
		PairButton:  &board.Pin{Pin: "SIM_PAIR", ActiveLow: true, Pull: "up"},
		Doorbell:    &board.Pin{Pin: "SIM_DOORBELL", ActiveLow: true, Pull: "up"},
		PIR:         &board.Pin{Pin: "SIM_PIR", Pull: "down"},
		Chime:       &board.ChimePin{Pin: "SIM_CHIME", Pulse: board.DefaultChimePulse},
	}
}

// Board is a simulated board. Its methods are safe to call from several
// goroutines.
type Board struct {
	b     *board.Board
	pins  map[string]*gpiotest.Pin // by name
	prof  *board.Profile
	light *Light
	ircut *trackedIRCut
	// Speaker keeps what camd played.
	Speaker *Speaker
}

// New builds a simulated board.
func New(opts Options) (*Board, error) {
	p := Profile()
	s := &Board{pins: map[string]*gpiotest.Pin{}, prof: p}
	for i, u := range p.Pins() {
		s.pins[u.Pin] = &gpiotest.Pin{
			N: u.Pin, Num: i, Fn: "GPIO",
			EdgesChan: make(chan gpio.Level, 64),
		}
	}
	lookup := func(name string) (gpio.PinIO, error) {
		if p, ok := s.pins[name]; ok {
			return p, nil
		}
		return nil, nil
	}
	b, err := hw.Open(p, hw.Options{Lookup: lookup})
	if err != nil {
		return nil, err
	}
	level := 1.0
	if opts.Light != 0 || opts.NoLight {
		level = opts.Light
	}
	s.light = &Light{level: level}
	b.Light = s.light
	s.ircut = &trackedIRCut{inner: b.IRCut}
	b.IRCut = s.ircut
	s.Speaker = NewSpeaker()
	s.Speaker.echo = opts.Echo
	b.Speaker = s.Speaker
	s.b = b
	return s, nil
}

// Board is the board camd uses.
func (s *Board) Board() *board.Board { return s.b }

// Pin returns a simulated pin by name (SIM_PAIR, SIM_STATUS_LED, ...).
func (s *Board) Pin(name string) *gpiotest.Pin { return s.pins[name] }

func (s *Board) input(b Button) (*gpiotest.Pin, bool) {
	var p *board.Pin
	switch b {
	case PairButton:
		p = s.prof.PairButton
	case Doorbell:
		p = s.prof.Doorbell
	case PIR:
		p = s.prof.PIR
	default:
		panic(fmt.Sprintf("sim: no input %q", b))
	}
	return s.pins[p.Pin], p.ActiveLow
}

// set puts an input at a level and signals the edge.
func (s *Board) set(b Button, active bool) {
	pin, activeLow := s.input(b)
	l := gpio.Level(active != activeLow)
	pin.Lock()
	pin.L = l
	pin.Unlock()
	select {
	case pin.EdgesChan <- l:
	default:
	}
}

// Press puts a button down (or a PIR active) until Release.
func (s *Board) Press(b Button) { s.set(b, true) }

// Release lets a button up.
func (s *Board) Release(b Button) { s.set(b, false) }

// Bounce makes a button's contacts chatter n times and settle at active,
// as a real switch does within a few milliseconds.
func (s *Board) Bounce(b Button, n int, active bool) {
	for i := range n {
		s.set(b, i%2 == 0 == active)
	}
	s.set(b, active)
}

// SetMotion sets the PIR's output.
func (s *Board) SetMotion(on bool) { s.set(PIR, on) }

// SetLight sets the light level, 0 (dark) to 1 (bright).
func (s *Board) SetLight(level float64) { s.light.Set(level) }

func (s *Board) output(name string) bool {
	return bool(s.pins[name].Read())
}

// Chime reports whether the chime's output is on (a pulse under way).
func (s *Board) Chime() bool { return s.output(s.prof.Chime.Pin) }

// StatusLED reports whether the status LED is lit.
func (s *Board) StatusLED() bool { return s.output(s.prof.StatusLED.Pin) }

// IRLED reports whether the IR LEDs are lit.
func (s *Board) IRLED() bool { return s.output(s.prof.IRLED.Pin) }

// IRCutCoils reports whether each IR-cut coil is driven now (true only
// during a pulse).
func (s *Board) IRCutCoils() (day, night bool) {
	return s.output(s.prof.IRCut.Day), s.output(s.prof.IRCut.Night)
}

// Night reports where the last completed IR-cut move left the filter.
func (s *Board) Night() bool { return s.ircut.position() }

// IRCutMoves counts completed IR-cut moves.
func (s *Board) IRCutMoves() int { return s.ircut.count() }

// Light is the simulated light sensor.
type Light struct {
	mu    sync.Mutex
	level float64
}

var _ board.LightSensor = (*Light)(nil)

// Set sets the level.
func (l *Light) Set(level float64) {
	l.mu.Lock()
	l.level = level
	l.mu.Unlock()
}

// Light returns the level.
func (l *Light) Light() (float64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.level, nil
}

// trackedIRCut remembers where the filter is and how often it moved.
type trackedIRCut struct {
	inner board.IRCut
	mu    sync.Mutex
	night bool
	moves int
}

func (t *trackedIRCut) SetNight(night bool) error {
	if err := t.inner.SetNight(night); err != nil {
		return err
	}
	t.mu.Lock()
	t.night = night
	t.moves++
	t.mu.Unlock()
	return nil
}

func (t *trackedIRCut) position() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.night
}

func (t *trackedIRCut) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.moves
}
