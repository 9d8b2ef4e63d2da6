package board_test

import (
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/camd-project/camd/board"
	"github.com/camd-project/camd/board/boardtest"
)

// dayNightRig runs a DayNight on fakes. Make it inside a synctest
// bubble: the controller's readings run on the bubble's clock.
type dayNightRig struct {
	t     *testing.T
	light *boardtest.Light
	ircut *boardtest.IRCut
	led   *boardtest.Output
	dn    *board.DayNight
}

func newDayNightRig(t *testing.T, level float64) *dayNightRig {
	r := &dayNightRig{t: t, light: &boardtest.Light{Level: level}, ircut: &boardtest.IRCut{}, led: &boardtest.Output{}}
	var err error
	r.dn, err = board.NewDayNight(board.DayNightOptions{Light: r.light, IRCut: r.ircut, IRLED: r.led})
	if err != nil {
		t.Fatal(err)
	}
	goRun(t, r.dn.Run)
	synctest.Wait()
	return r
}

// seconds lets n one-second readings happen at the given light level.
func (r *dayNightRig) seconds(n int, level float64) {
	for range n {
		r.light.Set(level)
		time.Sleep(time.Second)
		synctest.Wait()
	}
}

func (r *dayNightRig) check(wantNight bool, wantMoves int) {
	r.t.Helper()
	night, moves := r.ircut.State()
	if night != wantNight || r.dn.Night() != wantNight || r.led.Get() != wantNight || moves != wantMoves {
		r.t.Fatalf("night %v (controller %v, IR LED %v), moves %d; want night %v, moves %d",
			night, r.dn.Night(), r.led.Get(), moves, wantNight, wantMoves)
	}
}

func TestDayNightStartsInTheRightPosition(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		newDayNightRig(t, 0.9).check(false, 1)
		newDayNightRig(t, 0.05).check(true, 1)
		// Between the thresholds at start: day (the filter's safe position).
		newDayNightRig(t, 0.25).check(false, 1)
	})
}

func TestDayNightWaitsForTheHold(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newDayNightRig(t, 0.9)
		r.seconds(10, 0.1) // dark for 9 s counted from the first dark reading
		r.check(false, 1)
		r.seconds(1, 0.1) // 10 s: switch
		r.check(true, 2)
		r.seconds(10, 0.9)
		r.check(true, 2)
		r.seconds(1, 0.9)
		r.check(false, 3)
	})
}

func TestDayNightHysteresisNeverFlaps(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newDayNightRig(t, 0.9)
		// A light hovering around the night threshold, or brief darkness
		// (a shadow, a passing car at night), never switches.
		for range 30 {
			r.seconds(1, 0.14)
			r.seconds(1, 0.16)
		}
		for range 10 {
			r.seconds(9, 0.0)
			r.seconds(1, 0.5)
		}
		r.check(false, 1)
		// Inside the band the position holds whichever it is.
		r.seconds(20, 0.25)
		r.check(false, 1)
		r.seconds(11, 0.1)
		r.check(true, 2)
		for range 30 {
			r.seconds(1, 0.34)
			r.seconds(1, 0.36)
		}
		r.seconds(60, 0.25)
		r.check(true, 2)
	})
}

// TestDayNightModes: a forced mode applies at once (no time passes on the
// bubble's clock) and holds whatever the light does.
func TestDayNightModes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newDayNightRig(t, 0.9)
		r.dn.SetMode(board.ModeNight)
		synctest.Wait()
		r.check(true, 2)
		r.seconds(30, 0.9)
		r.check(true, 2)
		r.dn.SetMode(board.ModeDay)
		synctest.Wait()
		r.check(false, 3)
		r.seconds(30, 0.0)
		r.check(false, 3)
		// Back to auto in the dark: night at once, without the hold.
		r.dn.SetMode(board.ModeAuto)
		synctest.Wait()
		r.check(true, 4)
		if r.dn.Mode() != board.ModeAuto {
			t.Fatal(r.dn.Mode())
		}
	})
}

func TestDayNightKeepsPositionWhenTheSensorFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newDayNightRig(t, 0.05)
		r.light.Lock()
		r.light.Err = errors.New("i2c: no ACK")
		r.light.Unlock()
		r.seconds(30, 0.9)
		r.check(true, 1)
	})
}

func TestDayNightRefusesBadThresholds(t *testing.T) {
	if _, err := board.NewDayNight(board.DayNightOptions{NightBelow: 0.5, DayAbove: 0.4}); err == nil {
		t.Fatal("crossed thresholds accepted")
	}
}
