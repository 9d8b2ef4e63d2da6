package board_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/goleak"

	"github.com/camd-project/camd/board"
	"github.com/camd-project/camd/board/boardtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// step waits until the goroutine under test waits on the clock, then
// advances it.
func step(t *testing.T, clock clockwork.FakeClock, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := blockUntil(clock, ctx, 1); err != nil {
		t.Fatal("nothing waits on the clock")
	}
	clock.Advance(d)
}

// blockUntil waits until n timers wait on the fake clock (clockwork
// v0.4.0's FakeClock has BlockUntilContext but does not declare it).
func blockUntil(clock clockwork.FakeClock, ctx context.Context, n int) error {
	return clock.(interface {
		BlockUntilContext(context.Context, int) error
	}).BlockUntilContext(ctx, n)
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestPatternPriority(t *testing.T) {
	cases := []struct {
		conds board.Condition
		want  board.Pattern
	}{
		{0, board.Pattern{time.Second}},
		{board.Recording, board.PatternFor(board.Recording)},
		{board.Recording | board.Unpaired, board.PatternFor(board.Unpaired)},
		{board.Unpaired | board.Pairing, board.PatternFor(board.Pairing)},
		{board.Pairing | board.Failure | board.Recording, board.PatternFor(board.Failure)},
	}
	for _, c := range cases {
		if got := board.PatternFor(c.conds); len(got) != len(c.want) || got[0] != c.want[0] {
			t.Errorf("%b: %v, want %v", c.conds, got, c.want)
		}
	}
	if p := board.PatternFor(board.Pairing); p[0] != 200*time.Millisecond || p[1] != 200*time.Millisecond {
		t.Errorf("pairing blinks %v", p)
	}
}

func TestStatusLightPlaysPatterns(t *testing.T) {
	clock := clockwork.NewFakeClock()
	led := &boardtest.Output{Clock: clock}
	s := board.NewStatusLight(led, board.StatusLightOptions{Clock: clock})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { s.Run(ctx) })

	eventually(t, "steady on at start", led.Get)

	// play advances the clock in small steps and returns the gaps between
	// the LED's changes, leaving out the first few (the pattern before may
	// still be playing while the new one is picked up).
	play := func(total time.Duration) []time.Duration {
		t.Helper()
		led.Lock()
		mark := len(led.History)
		led.Unlock()
		for range total / (10 * time.Millisecond) {
			step(t, clock, 10*time.Millisecond)
		}
		led.Lock()
		defer led.Unlock()
		var gaps []time.Duration
		h := led.History[min(mark+3, len(led.History)):]
		for i := 1; i < len(h); i++ {
			if h[i].On == h[i-1].On {
				t.Fatalf("LED set %v twice in a row: %v", h[i].On, h)
			}
			gaps = append(gaps, h[i].At.Sub(h[i-1].At))
		}
		return gaps
	}
	checkGaps := func(gaps []time.Duration, want ...time.Duration) {
		t.Helper()
		if len(gaps) < 2*len(want) {
			t.Fatalf("only %d changes: %v", len(gaps), gaps)
		}
		// The gaps repeat the pattern from some phase.
		for phase := range want {
			ok := true
			for i, g := range gaps {
				if g != want[(i+phase)%len(want)] {
					ok = false
				}
			}
			if ok {
				return
			}
		}
		t.Fatalf("gaps %v do not repeat %v", gaps, want)
	}

	s.Set(board.Unpaired, true)
	s.Set(board.Pairing, true)
	checkGaps(play(2*time.Second), 200*time.Millisecond)

	// The window closes: the unpaired slow blink.
	s.Set(board.Pairing, false)
	checkGaps(play(10*time.Second), time.Second)

	// A failure outranks everything.
	s.Set(board.Failure, true)
	checkGaps(play(6*time.Second), board.PatternFor(board.Failure)...)
	s.Set(board.Failure, false)

	// Disabled: dark, but the pairing window still shows.
	s.SetEnabled(false)
	eventually(t, "dark when disabled", func() bool { return !led.Get() && s.Pattern() == nil })
	s.Set(board.Pairing, true)
	checkGaps(play(2*time.Second), 200*time.Millisecond)
	s.Set(board.Pairing, false)
	eventually(t, "dark again", func() bool { return !led.Get() })

	s.SetEnabled(true)
	s.Set(board.Unpaired, false)
	eventually(t, "steady on", led.Get)
	cancel()
	wg.Wait()
	if led.Get() {
		t.Fatal("LED left on after Run")
	}
}

func TestPulsedIRCut(t *testing.T) {
	clock := clockwork.NewFakeClock()
	day, night := &boardtest.Output{Clock: clock}, &boardtest.Output{Clock: clock}
	c := &board.PulsedIRCut{Day: day, Night: night, Pulse: 150 * time.Millisecond, Clock: clock}
	for _, toNight := range []bool{true, false, true} {
		done := make(chan error, 1)
		go func() { done <- c.SetNight(toNight) }()
		coil, other := day, night
		if toNight {
			coil, other = night, day
		}
		eventually(t, "coil driven", coil.Get)
		if other.Get() {
			t.Fatal("both coils driven")
		}
		step(t, clock, 149*time.Millisecond)
		if !coil.Get() {
			t.Fatal("pulse ended early")
		}
		clock.Advance(time.Millisecond)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if coil.Get() || other.Get() {
			t.Fatal("a coil is still driven after the pulse")
		}
	}
	// A pulse is exactly 150 ms of the fake clock.
	h := night.History
	var on, off time.Time
	for _, l := range h {
		if l.On && on.IsZero() {
			on = l.At
		} else if !l.On && !on.IsZero() && off.IsZero() {
			off = l.At
		}
	}
	if off.Sub(on) != 150*time.Millisecond {
		t.Fatalf("pulse lasted %v (%v)", off.Sub(on), h)
	}
}

func TestLevelIRCut(t *testing.T) {
	pin := &boardtest.Output{}
	c := board.LevelIRCut{Pin: pin}
	c.SetNight(true)
	if !pin.Get() {
		t.Fatal("night did not set the pin")
	}
	c.SetNight(false)
	if pin.Get() {
		t.Fatal("day did not clear the pin")
	}
}
