package sim_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/camd-project/camd/board"
	"github.com/camd-project/camd/board/sim"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// buttonRig watches one simulated input and records what it reports.
// Make it inside a synctest bubble: the watcher's debounce and hold run
// on the bubble's clock, and so do the sim pins' waits for an edge
// (periph's gpiotest.Pin selects on its EdgesChan, made here in the
// bubble, and time.After).
type buttonRig struct {
	t      *testing.T
	sim    *sim.Board
	events chan string
}

func newButtonRig(t *testing.T, input sim.Button, before func(*sim.Board)) *buttonRig {
	return newRig(t, input, before, false)
}

// newRig is newButtonRig, with leading: the watcher reports a press on
// its first edge (WatchOptions.Leading, the doorbell's).
func newRig(t *testing.T, input sim.Button, before func(*sim.Board), leading bool) *buttonRig {
	s, err := sim.New(sim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Board().Close() })
	if before != nil {
		before(s)
	}
	r := &buttonRig{t: t, sim: s, events: make(chan string, 100)}
	rec := func(e string) func() { return func() { r.events <- e } }
	in := map[sim.Button]board.Input{sim.PairButton: s.Board().PairButton, sim.Doorbell: s.Board().Doorbell, sim.PIR: s.Board().PIR}[input]
	w := board.NewWatcher(in, board.WatchOptions{
		Leading: leading,
		Hold:    board.ResetHold,
		OnDown:  rec("down"), OnPress: rec("press"), OnHold: rec("hold"),
		OnChange: func(a bool) {
			if a {
				r.events <- "active"
			} else {
				r.events <- "inactive"
			}
		},
	})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { w.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	synctest.Wait()
	return r
}

// after lets d pass on the bubble's clock and returns what the watcher
// reported meanwhile.
func (r *buttonRig) after(d time.Duration) string {
	time.Sleep(d)
	synctest.Wait()
	var got []string
	for len(r.events) > 0 {
		got = append(got, <-r.events)
	}
	return strings.Join(got, " ")
}

// expect checks what the watcher reports within d, and not before.
func (r *buttonRig) expect(d time.Duration, want string) {
	r.t.Helper()
	if d > time.Millisecond {
		if got := r.after(d - time.Millisecond); got != "" {
			r.t.Fatalf("%q a millisecond before %v", got, d)
		}
		d = time.Millisecond
	}
	if got := r.after(d); got != want {
		r.t.Fatalf("events %q, want %q", got, want)
	}
}

const debounce = board.DefaultDebounce

func TestShortPressOpensPairing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newButtonRig(t, sim.PairButton, nil)
		r.sim.Press(sim.PairButton)
		r.expect(debounce, "active down")
		r.expect(2*time.Second, "") // the hold deadline is 10 s: nothing yet
		r.sim.Release(sim.PairButton)
		r.expect(debounce, "inactive press")
	})
}

// TestLongPressFactoryResets holds the button for the 10 s of a factory
// reset, on the bubble's clock: the hold is reported exactly 10 s after
// the press counted, while the button is still down, and no press follows.
func TestLongPressFactoryResets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newButtonRig(t, sim.PairButton, nil)
		r.sim.Press(sim.PairButton)
		r.expect(debounce, "active down")
		r.expect(board.ResetHold, "hold")
		r.sim.Release(sim.PairButton)
		r.expect(debounce, "inactive")
		r.expect(time.Minute, "")
	})
}

func TestBouncingButtonPressesOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newButtonRig(t, sim.PairButton, nil)
		r.sim.Bounce(sim.PairButton, 7, true)
		r.expect(debounce, "active down")
		r.sim.Bounce(sim.PairButton, 5, false)
		r.expect(debounce, "inactive press")
		r.expect(time.Minute, "")
	})
}

func TestGlitchIsIgnored(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newButtonRig(t, sim.PairButton, nil)
		r.sim.Press(sim.PairButton)
		r.expect(debounce-time.Millisecond, "")
		r.sim.Release(sim.PairButton)
		r.expect(time.Minute, "")
	})
}

func TestButtonHeldThroughRestartDoesNotReset(t *testing.T) {
	// The button is down before camd starts (someone kept holding it
	// while the device rebooted): no reset, no pairing, until it has
	// been released and pressed again.
	synctest.Test(t, func(t *testing.T) {
		r := newButtonRig(t, sim.PairButton, func(s *sim.Board) { s.Press(sim.PairButton) })
		r.expect(time.Minute, "")
		r.sim.Release(sim.PairButton)
		r.expect(debounce, "inactive")
		r.sim.Press(sim.PairButton)
		r.expect(debounce, "active down")
		r.sim.Release(sim.PairButton)
		r.expect(debounce, "inactive press")
	})
}

func TestDoorbellRingsOnPress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newButtonRig(t, sim.Doorbell, nil)
		r.sim.Press(sim.Doorbell)
		r.expect(debounce, "active down")
	})
}

// chatter toggles the button's contacts n times a millisecond apart
// (on the bubble's clock), ending at active: a real chime button's
// bounce spread over time.
func (r *buttonRig) chatter(b sim.Button, n int, active bool) {
	for i := range n {
		if i%2 == 0 == active {
			r.sim.Press(b)
		} else {
			r.sim.Release(b)
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
	}
	if active {
		r.sim.Press(b)
	} else {
		r.sim.Release(b)
	}
}

// TestDoorbellRingsOnFirstEdge: with Leading (the doorbell's watcher) a
// press counts at its first edge, at once; its bounces, spread over 6 ms,
// are swallowed; the release counts once it held the debounce, and the
// next press again at its first edge. A button held through a restart
// still waits for its release. The price, documented: a glitch shorter
// than the debounce is a press.
func TestDoorbellRingsOnFirstEdge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, sim.Doorbell, nil, true)
		r.chatter(sim.Doorbell, 7, true) // 6 ms of bounce, ending down
		if got := r.after(0); got != "active down" {
			t.Fatalf("during the bounce: %q, want the press at its first edge", got)
		}
		r.expect(5*time.Second, "") // held (the rig holds 10 s for OnHold): nothing more
		r.chatter(sim.Doorbell, 5, false)
		r.expect(debounce, "inactive press")
		r.sim.Press(sim.Doorbell)
		if got := r.after(0); got != "active down" {
			t.Fatalf("second press: %q", got)
		}
		r.sim.Release(sim.Doorbell)
		r.expect(debounce, "inactive press")

		// A glitch: a press too.
		r.sim.Press(sim.Doorbell)
		if got := r.after(time.Millisecond); got != "active down" {
			t.Fatalf("a glitch: %q", got)
		}
		r.sim.Release(sim.Doorbell)
		r.expect(debounce, "inactive press")
	})
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, sim.Doorbell, func(s *sim.Board) { s.Press(sim.Doorbell) }, true)
		r.expect(time.Minute, "")
		r.sim.Release(sim.Doorbell)
		r.expect(debounce, "inactive")
		r.sim.Press(sim.Doorbell)
		if got := r.after(0); got != "active down" {
			t.Fatalf("the first press after the release: %q", got)
		}
	})
}

func TestPIR(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newButtonRig(t, sim.PIR, nil)
		r.sim.SetMotion(true)
		r.expect(debounce, "active down")
		r.sim.SetMotion(false)
		r.expect(debounce, "inactive press")
	})
}

func TestSimOutputs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, err := sim.New(sim.Options{NoLight: true})
		if err != nil {
			t.Fatal(err)
		}
		b := s.Board()
		if b.Name != "sim" || b.IRCut == nil || b.IRLED == nil || b.StatusLED == nil || b.PairButton == nil ||
			b.Doorbell == nil || b.PIR == nil || b.Light == nil {
			t.Fatalf("sim board lacks a part: %+v", b)
		}
		if l, _ := b.Light.Light(); l != 0 {
			t.Fatalf("NoLight: level %v", l)
		}
		s.SetLight(0.7)
		if l, _ := b.Light.Light(); l != 0.7 {
			t.Fatalf("SetLight: level %v", l)
		}

		b.StatusLED.Set(true)
		b.IRLED.Set(true)
		if !s.StatusLED() || !s.IRLED() {
			t.Fatal("LEDs did not light")
		}

		// The IR-cut pulse, on the driver's pins: the night coil for
		// exactly the profile's pulse.
		done := make(chan error, 1)
		go func() { done <- b.IRCut.SetNight(true) }()
		synctest.Wait()
		if day, night := s.IRCutCoils(); day || !night {
			t.Fatalf("during the night pulse: day coil %v, night coil %v", day, night)
		}
		time.Sleep(board.DefaultPulse - time.Millisecond)
		synctest.Wait()
		if _, night := s.IRCutCoils(); !night || len(done) > 0 {
			t.Fatal("the pulse ended early")
		}
		time.Sleep(time.Millisecond)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if day, night := s.IRCutCoils(); day || night {
			t.Fatal("a coil is still driven after the pulse")
		}
		if !s.Night() || s.IRCutMoves() != 1 {
			t.Fatalf("position %v, moves %d", s.Night(), s.IRCutMoves())
		}

		// Close turns everything off.
		b.Close()
		b.Close()
		if s.StatusLED() || s.IRLED() {
			t.Fatal("LEDs left on after Close")
		}
	})
}

// TestSimDayNight runs the controller on the sim board: the readings, the
// hold and the IR-cut pulse all on the bubble's clock.
func TestSimDayNight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, err := sim.New(sim.Options{Light: 0.9})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Board().Close()
		b := s.Board()
		dn, _ := board.NewDayNight(board.DayNightOptions{Light: b.Light, IRCut: b.IRCut, IRLED: b.IRLED, Hold: 5 * time.Second})
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() { dn.Run(ctx) })
		defer func() { cancel(); wg.Wait() }()
		// At start the filter moves to day (a pulse), then light readings
		// come every second.
		time.Sleep(500 * time.Millisecond)
		synctest.Wait()
		if s.Night() || s.IRLED() || s.IRCutMoves() != 1 {
			t.Fatalf("daylight: filter night %v, IR LED %v, moves %d", s.Night(), s.IRLED(), s.IRCutMoves())
		}
		// Dark from here: the first dark reading 0.65 s later (1.15 s
		// from start), night 5 s after it, then the pulse.
		s.SetLight(0.02)
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if s.Night() || s.IRLED() {
			t.Fatal("night before the hold")
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if !s.Night() || !s.IRLED() || s.IRCutMoves() != 2 {
			t.Fatalf("day after 6 s of darkness (filter night %v, IR LED %v, moves %d)", s.Night(), s.IRLED(), s.IRCutMoves())
		}
	})
}
