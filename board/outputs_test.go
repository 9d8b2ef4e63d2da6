package board_test

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/camd-project/camd/board"
	"github.com/camd-project/camd/board/boardtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// goRun runs f in a goroutine until the end of the test: its context is
// cancelled then, and the cleanup waits for it to return.
func goRun(t *testing.T, f func(ctx context.Context)) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { f(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
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
		{board.Failure | board.Ringing, board.Pattern{100 * time.Millisecond, 100 * time.Millisecond}},
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

// TestStatusLightPlaysPatterns runs in a synctest bubble: the LED's
// timers run on the bubble's clock, so every gap is exact and the 30 s
// of patterns take milliseconds.
func TestStatusLightPlaysPatterns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		led := &boardtest.Output{}
		s := board.NewStatusLight(led, board.StatusLightOptions{})
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() { s.Run(ctx) })
		t.Cleanup(func() { cancel(); wg.Wait() })

		synctest.Wait()
		if !led.Get() {
			t.Fatal("not steady on at start")
		}
		changes := func() int {
			led.Lock()
			defer led.Unlock()
			return len(led.History)
		}

		// play lets the conditions just set take effect, checks that the
		// new pattern starts at once, lit, lets total pass and returns the
		// gaps between the LED's changes since.
		play := func(total time.Duration) []time.Duration {
			t.Helper()
			start := time.Now()
			synctest.Wait()
			led.Lock()
			mark := len(led.History) - 1
			if last := led.History[mark]; !last.On || !last.At.Equal(start) {
				t.Fatalf("the new pattern did not start at once, lit: %v at %v", last, start)
			}
			led.Unlock()
			time.Sleep(total)
			synctest.Wait()
			led.Lock()
			defer led.Unlock()
			var gaps []time.Duration
			h := led.History[mark:]
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
			for i, g := range gaps {
				if g != want[i%len(want)] {
					t.Fatalf("gaps %v do not repeat %v", gaps, want)
				}
			}
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

		// Disabled: dark, and it stays dark.
		s.SetEnabled(false)
		synctest.Wait()
		if led.Get() || s.Pattern() != nil {
			t.Fatalf("disabled: LED %v, pattern %v", led.Get(), s.Pattern())
		}
		n := changes()
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if changes() != n {
			t.Fatal("a disabled LED blinks")
		}
		// But the pairing window still shows.
		s.Set(board.Pairing, true)
		checkGaps(play(2*time.Second), 200*time.Millisecond)
		s.Set(board.Pairing, false)
		synctest.Wait()
		if led.Get() {
			t.Fatal("not dark again after the pairing window")
		}

		s.SetEnabled(true)
		s.Set(board.Unpaired, false)
		synctest.Wait()
		if !led.Get() {
			t.Fatal("not steady on")
		}
		cancel()
		wg.Wait()
		if led.Get() {
			t.Fatal("LED left on after Run")
		}
	})
}

// TestPulsedIRCut drives each coil for exactly the pulse, on the clock of
// a synctest bubble.
func TestPulsedIRCut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		day, night := &boardtest.Output{}, &boardtest.Output{}
		c := &board.PulsedIRCut{Day: day, Night: night, Pulse: 150 * time.Millisecond}
		for _, toNight := range []bool{true, false, true} {
			start := time.Now()
			done := make(chan error, 1)
			go func() { done <- c.SetNight(toNight) }()
			coil, other := day, night
			if toNight {
				coil, other = night, day
			}
			synctest.Wait()
			if !coil.Get() || other.Get() {
				t.Fatalf("at the start of the pulse: coil %v, other coil %v", coil.Get(), other.Get())
			}
			time.Sleep(149 * time.Millisecond)
			synctest.Wait()
			if !coil.Get() || len(done) > 0 {
				t.Fatal("pulse ended early")
			}
			time.Sleep(time.Millisecond)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if took := time.Since(start); took != 150*time.Millisecond {
				t.Fatalf("SetNight returned after %v", took)
			}
			if coil.Get() || other.Get() {
				t.Fatal("a coil is still driven after the pulse")
			}
		}
		// A pulse is exactly 150 ms.
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
	})
}

// TestPulsedIRCutMovesOneAtATime: moves asked for together run one after
// the other, and never drive both coils. The second mover waits durably
// (not on a mutex held across the pulse), so the bubble's clock moves.
func TestPulsedIRCutMovesOneAtATime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		day, night := &boardtest.Output{}, &boardtest.Output{}
		c := &board.PulsedIRCut{Day: day, Night: night, Pulse: 150 * time.Millisecond}
		start := time.Now()
		done := make(chan error, 2)
		go func() { done <- c.SetNight(true) }()
		go func() { done <- c.SetNight(false) }()
		synctest.Wait()
		if day.Get() == night.Get() {
			t.Fatalf("day coil %v, night coil %v: want exactly one driven", day.Get(), night.Get())
		}
		time.Sleep(150 * time.Millisecond)
		synctest.Wait()
		if day.Get() == night.Get() {
			t.Fatalf("second move: day coil %v, night coil %v: want exactly one driven", day.Get(), night.Get())
		}
		for range 2 {
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		}
		if took := time.Since(start); took != 300*time.Millisecond {
			t.Fatalf("two moves took %v", took)
		}
	})
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
