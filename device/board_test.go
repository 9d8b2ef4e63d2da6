package device

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/camd-project/camd/board"
	"github.com/camd-project/camd/board/sim"
)

// withFakeButtons gives the daemon's input watchers a fake clock, before
// Run.
func withFakeButtons(d *Daemon) clockwork.FakeClock {
	clock := clockwork.NewFakeClock()
	d.board.clock = clock
	d.board.watchInputs()
	return clock
}

// advanceFor moves the fake clock a millisecond at a time until cond
// holds (the watchers see edges asynchronously).
func advanceFor(t *testing.T, clock clockwork.FakeClock, limit time.Duration, cond func() bool) {
	t.Helper()
	for moved := time.Duration(0); !cond(); moved += time.Millisecond {
		if moved > limit {
			t.Fatalf("nothing happened after %v", limit)
		}
		clock.Advance(time.Millisecond)
		time.Sleep(100 * time.Microsecond)
	}
}

func TestPairButtonOpensPairingWindow(t *testing.T) {
	d, err := New(passthroughConfig(t), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	clock := withFakeButtons(d)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() { cancel(); <-done }()

	if d.board.status.Pattern()[0] != board.PatternFor(board.Unpaired)[0] {
		t.Fatalf("unpaired camera shows %v", d.board.status.Pattern())
	}
	opened := func() bool { open, until, _ := d.pairing.Window(); return open && !until.IsZero() }
	if opened() {
		t.Fatal("window open before the press")
	}
	d.board.sim.Press(sim.PairButton)
	settle(clock, 100*time.Millisecond) // held for 100 ms
	if opened() {
		t.Fatal("window open before the release")
	}
	d.board.sim.Release(sim.PairButton)
	advanceFor(t, clock, time.Second, opened)
	// The LED follows right after the window opened.
	deadline := time.Now().Add(5 * time.Second)
	for p := d.board.status.Pattern(); p[0] != board.PatternFor(board.Pairing)[0]; p = d.board.status.Pattern() {
		if time.Now().After(deadline) {
			t.Fatalf("pairing window open, LED shows %v", p)
		}
		time.Sleep(time.Millisecond)
	}
}

// settle lets the watchers see the last edge, then moves the fake clock
// by d in millisecond steps.
func settle(clock clockwork.FakeClock, d time.Duration) {
	time.Sleep(20 * time.Millisecond)
	for range d / time.Millisecond {
		clock.Advance(time.Millisecond)
		time.Sleep(100 * time.Microsecond)
	}
}

func TestLongPressFactoryResets(t *testing.T) {
	d, err := New(passthroughConfig(t), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	clock := withFakeButtons(d)
	done := make(chan error, 1)
	go func() { done <- d.Run(context.Background()) }()

	d.board.sim.Press(sim.PairButton)
	settle(clock, 100*time.Millisecond)
	// Held for 9.9 s: nothing yet.
	clock.Advance(board.ResetHold - 200*time.Millisecond)
	time.Sleep(20 * time.Millisecond)
	if len(done) > 0 {
		t.Fatalf("reset before 10 s: %v", <-done)
	}
	advanceFor(t, clock, time.Second, func() bool { return len(done) > 0 })
	if err := <-done; !errors.Is(err, ErrFactoryReset) {
		t.Fatalf("Run after a 10 s press: %v", err)
	}
}

func TestDoorbellAndPIREvents(t *testing.T) {
	d, err := New(passthroughConfig(t), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	clock := withFakeButtons(d)
	rang := make(chan struct{}, 4)
	motion := make(chan bool, 4)
	d.board.events.ring = func() { rang <- struct{}{} }
	d.board.events.motion = func(a bool) { motion <- a }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() { cancel(); <-done }()

	d.board.sim.Press(sim.Doorbell)
	advanceFor(t, clock, time.Second, func() bool { return len(rang) == 1 })
	d.board.sim.SetMotion(true)
	advanceFor(t, clock, time.Second, func() bool { return len(motion) == 1 })
	if !<-motion {
		t.Fatal("motion start reported as stop")
	}
}

func TestUnknownBoardProfileStopsStart(t *testing.T) {
	cfg := passthroughConfig(t)
	path := filepath.Join(cfg.Data, "board.yaml")
	os.WriteFile(path, []byte("status_led: {pin: GPIO4}\nir_led: {pin: GPIO4}\n"), 0o644)
	cfg.Board = path
	_, err := New(cfg, slog.New(slog.DiscardHandler))
	if !errors.Is(err, board.ErrProfile) {
		t.Fatalf("profile with a pin used twice: %v", err)
	}
	cfg.Board = "nosuchboard"
	if err := cfg.Validate(); err == nil {
		t.Fatal("unknown board accepted")
	}
}

func TestWatchdogKicksAndDisarms(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	if openWatchdog("", log) != nil || openWatchdog(filepath.Join(t.TempDir(), "watchdog"), log) != nil {
		t.Fatal("a missing watchdog was opened")
	}
	// A regular file stands in for the device: it records the kicks.
	path := filepath.Join(t.TempDir(), "watchdog")
	os.WriteFile(path, nil, 0o600)
	w := openWatchdog(path, log)
	if w == nil {
		t.Fatal("not opened")
	}
	w.every = 10 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(35 * time.Millisecond); cancel() }()
	w.run(ctx)
	w.close()
	b, _ := os.ReadFile(path)
	if len(b) < 3 || b[0] != 0 || b[len(b)-1] != 'V' {
		t.Fatalf("watchdog got %q: want kicks then the magic V", b)
	}
}

// TestStatusLEDShowsRecording checks the LED's recording pattern: a
// paired camera that records shows it within one status refresh.
func TestStatusLEDShowsRecording(t *testing.T) {
	cfg := testConfig(t) // the synthetic camera, recording continuously
	d, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	clock := withFakeButtons(d)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() { cancel(); <-done }()
	p := d.pairing.SetupPayload(d.hostHintFor())
	if code, _ := pairWith(t, d, p.Secret[:], "owner", ""); code != 201 {
		t.Fatalf("pairing: %d", code)
	}
	recording := func() bool {
		clock.Advance(2 * time.Second) // the status refresh tick
		time.Sleep(20 * time.Millisecond)
		return d.board.status.Pattern()[0] == board.PatternFor(board.Recording)[0]
	}
	deadline := time.Now().Add(20 * time.Second)
	for !recording() {
		if time.Now().After(deadline) {
			t.Fatalf("recording %v, LED shows %v", d.recording.rec.Stats().Recording, d.board.status.Pattern())
		}
	}
}
