package sim_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/goleak"

	"github.com/camd-project/camd/board"
	"github.com/camd-project/camd/board/sim"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// buttonRig watches one simulated input with a fake clock and records
// what it reports.
type buttonRig struct {
	t      *testing.T
	clock  clockwork.FakeClock
	sim    *sim.Board
	events chan string

	mu     sync.Mutex
	downAt time.Time // the fake time of the last "down"
}

func newButtonRig(t *testing.T, input sim.Button, before func(*sim.Board)) *buttonRig {
	clock := clockwork.NewFakeClock()
	s, err := sim.New(sim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Board().Close() })
	if before != nil {
		before(s)
	}
	r := &buttonRig{t: t, clock: clock, sim: s, events: make(chan string, 100)}
	rec := func(e string) func() { return func() { r.events <- e } }
	in := map[sim.Button]board.Input{sim.PairButton: s.Board().PairButton, sim.Doorbell: s.Board().Doorbell, sim.PIR: s.Board().PIR}[input]
	w := board.NewWatcher(in, board.WatchOptions{
		Clock: clock, Hold: board.ResetHold, Poll: 20 * time.Millisecond,
		OnDown: func() {
			r.mu.Lock()
			r.downAt = clock.Now()
			r.mu.Unlock()
			r.events <- "down"
		},
		OnPress: rec("press"), OnHold: rec("hold"),
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
	return r
}

// blockUntil waits until n timers wait on the fake clock (clockwork
// v0.4.0's FakeClock has BlockUntilContext but does not declare it).
func blockUntil(clock clockwork.FakeClock, ctx context.Context, n int) error {
	return clock.(interface {
		BlockUntilContext(context.Context, int) error
	}).BlockUntilContext(ctx, n)
}

// advance waits until the watcher has a deadline, then moves the clock.
func (r *buttonRig) advance(d time.Duration) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := blockUntil(r.clock, ctx, 1); err != nil {
		r.t.Fatal("the watcher set no deadline")
	}
	r.clock.Advance(d)
}

// settle moves the clock a millisecond at a time until the watcher
// reports want: it may see an edge before or after any one step, so
// this does not measure the debounce (TestButtonStateMachine does).
func (r *buttonRig) settle(want ...string) {
	r.t.Helper()
	var got []string
	for i := 0; i < 1000 && len(got) < len(want); i++ {
		r.clock.Advance(time.Millisecond)
		select {
		case e := <-r.events:
			got = append(got, e)
		case <-time.After(time.Millisecond):
		}
	}
	for len(got) < len(want) {
		select {
		case e := <-r.events:
			got = append(got, e)
		case <-time.After(time.Second):
			r.t.Fatalf("events %q, want %q", got, want)
		}
	}
	for i := range want {
		if got[i] != want[i] {
			r.t.Fatalf("events %q, want %q", got, want)
		}
	}
}

func (r *buttonRig) expectNothing() {
	r.t.Helper()
	select {
	case got := <-r.events:
		r.t.Fatalf("unexpected event %q", got)
	case <-time.After(50 * time.Millisecond):
	}
}

func TestShortPressOpensPairing(t *testing.T) {
	r := newButtonRig(t, sim.PairButton, nil)
	r.sim.Press(sim.PairButton)
	r.settle("active", "down")
	r.advance(2 * time.Second) // the hold deadline is 10 s: nothing yet
	r.expectNothing()
	r.sim.Release(sim.PairButton)
	r.settle("inactive", "press")
}

func TestLongPressFactoryResets(t *testing.T) {
	r := newButtonRig(t, sim.PairButton, nil)
	r.sim.Press(sim.PairButton)
	r.settle("active", "down")
	// The rig notes the time of "down" a little after the watcher does
	// (settle keeps moving the clock meanwhile), so the hold is checked
	// within a margin.
	const margin = 50 * time.Millisecond
	r.mu.Lock()
	due := r.downAt.Add(board.ResetHold)
	r.mu.Unlock()
	r.advance(due.Sub(r.clock.Now()) - margin)
	r.expectNothing()
	r.settle("hold") // within the margin, while the button is still down
	if late := r.clock.Now().Sub(due); late > margin {
		t.Fatalf("hold reported %v after the 10 s", late)
	}
	r.sim.Release(sim.PairButton)
	r.settle("inactive") // and no "press" after a reset
	r.expectNothing()
}

func TestBouncingButtonPressesOnce(t *testing.T) {
	r := newButtonRig(t, sim.PairButton, nil)
	r.sim.Bounce(sim.PairButton, 7, true)
	r.settle("active", "down")
	r.sim.Bounce(sim.PairButton, 5, false)
	r.settle("inactive", "press")
	r.expectNothing()
}

func TestGlitchIsIgnored(t *testing.T) {
	r := newButtonRig(t, sim.PairButton, nil)
	r.sim.Press(sim.PairButton)
	r.sim.Release(sim.PairButton)
	for range 100 {
		r.clock.Advance(time.Millisecond)
	}
	r.expectNothing()
}

func TestButtonHeldThroughRestartDoesNotReset(t *testing.T) {
	// The button is down before camd starts (someone kept holding it
	// while the device rebooted): no reset, no pairing, until it has
	// been released and pressed again.
	r := newButtonRig(t, sim.PairButton, func(s *sim.Board) { s.Press(sim.PairButton) })
	r.clock.Advance(time.Minute)
	r.expectNothing()
	r.sim.Release(sim.PairButton)
	r.settle("inactive")
	r.sim.Press(sim.PairButton)
	r.settle("active", "down")
	r.sim.Release(sim.PairButton)
	r.settle("inactive", "press")
}

func TestDoorbellRingsOnPress(t *testing.T) {
	r := newButtonRig(t, sim.Doorbell, nil)
	r.sim.Press(sim.Doorbell)
	r.settle("active", "down")
}

func TestPIR(t *testing.T) {
	r := newButtonRig(t, sim.PIR, nil)
	r.sim.SetMotion(true)
	r.settle("active", "down")
	r.sim.SetMotion(false)
	r.settle("inactive", "press")
}

func TestSimOutputs(t *testing.T) {
	clock := clockwork.NewFakeClock()
	s, err := sim.New(sim.Options{Clock: clock, NoLight: true})
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

	// The IR-cut pulse, on the driver's pins.
	done := make(chan error)
	go func() { done <- b.IRCut.SetNight(true) }()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	blockUntil(clock, ctx, 1)
	if day, night := s.IRCutCoils(); day || !night {
		t.Fatalf("during the night pulse: day coil %v, night coil %v", day, night)
	}
	clock.Advance(board.DefaultPulse)
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
}

func TestSimDayNight(t *testing.T) {
	s, err := sim.New(sim.Options{Light: 0.9})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Board().Close()
	clock := clockwork.NewFakeClock()
	b := s.Board()
	// The controller's clock is fake; the sim's IR-cut pulse is real.
	dn, _ := board.NewDayNight(board.DayNightOptions{Light: b.Light, IRCut: b.IRCut, IRLED: b.IRLED, Clock: clock, Hold: 5 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { dn.Run(ctx) })
	defer func() { cancel(); wg.Wait() }()
	wait := func() {
		c, cl := context.WithTimeout(context.Background(), 5*time.Second)
		defer cl()
		if blockUntil(clock, c, 1) != nil {
			t.Fatal("day/night stuck")
		}
	}
	wait()
	if s.Night() || s.IRLED() {
		t.Fatal("night in daylight")
	}
	s.SetLight(0.02)
	for range 6 {
		clock.Advance(time.Second)
		wait()
	}
	if !s.Night() || !s.IRLED() {
		t.Fatalf("day after 6 s of darkness (filter night %v, IR LED %v)", s.Night(), s.IRLED())
	}
}
