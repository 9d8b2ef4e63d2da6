package device

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/camd-project/camd/board"
	"github.com/camd-project/camd/board/sim"
	"github.com/camd-project/camd/device/pairing"
	"github.com/camd-project/camd/storage"
)

// boardDaemon makes a daemon with only what its board uses (identity,
// catalog, pairing, settings, the sim board; no recording), and runBoard starts the
// board's behaviour as Run does. Call both inside a synctest bubble: the
// daemon opens no socket and runs no source, so every goroutine in the
// bubble is the board's, and the bubble's clock moves whenever they all
// wait. The full daemon (New, Run) serves the network and cannot run in a
// bubble.
func boardDaemon(t *testing.T) *Daemon {
	t.Helper()
	cfg := passthroughConfig(t)
	d := &Daemon{cfg: cfg, log: slog.New(slog.DiscardHandler), reset: make(resetSignal, 1)}
	var err error
	if d.id, err = LoadIdentity(cfg.Data); err != nil {
		t.Fatal(err)
	}
	if d.catalog, err = storage.OpenCatalog(filepath.Join(cfg.Data, "catalog.db"), storage.CatalogOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	if d.pairing, err = pairing.Open(d.catalog, pairing.Options{DeviceID: d.id.ID, Fingerprint: d.id.FingerprintBytes(), Logger: d.log}); err != nil {
		t.Fatal(err)
	}
	store, err := openSettings(d.catalog, cfg, d.log)
	if err != nil {
		t.Fatal(err)
	}
	d.board, err = openBoard(cfg.Board, boardOptions{
		events:   boardEventsFor(d.pairing, nil, nil, d.reset, nil, d.log),
		settings: store.Get(), pairing: d.pairing, log: d.log,
	})
	if err != nil {
		t.Fatal(err)
	}
	d.pairing.OnChange(d.board.refreshStatus)
	return d
}

// runBoard runs the board's behaviour until the end of the test.
func runBoard(t *testing.T, d *Daemon) {
	ctx, cancel := context.WithCancel(context.Background())
	d.board.start(ctx)
	t.Cleanup(cancel) // before d.Close, which waits for the board
	synctest.Wait()
}

func TestPairButtonOpensPairingWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := boardDaemon(t)
		runBoard(t, d)
		pattern := func() time.Duration { return d.board.status.Pattern()[0] }
		if pattern() != board.PatternFor(board.Unpaired)[0] {
			t.Fatalf("unpaired camera shows %v", d.board.status.Pattern())
		}
		opened := func() bool { open, until, _ := d.pairing.Window(); return open && !until.IsZero() }
		d.board.sim.Press(sim.PairButton)
		time.Sleep(100 * time.Millisecond) // held for 100 ms
		synctest.Wait()
		if opened() {
			t.Fatal("window open before the release")
		}
		d.board.sim.Release(sim.PairButton)
		time.Sleep(board.DefaultDebounce - time.Millisecond)
		synctest.Wait()
		if opened() {
			t.Fatal("window open before the release was debounced")
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if !opened() {
			t.Fatal("window not open 30 ms after the release")
		}
		// The LED follows at once.
		if pattern() != board.PatternFor(board.Pairing)[0] {
			t.Fatalf("pairing window open, LED shows %v", d.board.status.Pattern())
		}
		// The window closes by itself (15 min): the LED shows it within
		// one status refresh (2 s).
		_, until, _ := d.pairing.Window()
		time.Sleep(time.Until(until) + 2*time.Second)
		synctest.Wait()
		if opened() || pattern() != board.PatternFor(board.Unpaired)[0] {
			t.Fatalf("window open %v 2 s after it closed, LED shows %v", opened(), d.board.status.Pattern())
		}
	})
}

// TestLongPressFactoryResets holds the pair button for the 10 s of a
// factory reset on the bubble's clock: the reset is requested (Run stops
// with ErrFactoryReset on it, see TestBoardResetStopsRun) exactly when
// the hold is reached, not a millisecond before.
func TestLongPressFactoryResets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := boardDaemon(t)
		runBoard(t, d)
		d.board.sim.Press(sim.PairButton)
		time.Sleep(board.DefaultDebounce + board.ResetHold - time.Millisecond)
		synctest.Wait()
		if len(d.reset) > 0 {
			t.Fatal("reset requested before 10 s")
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if len(d.reset) != 1 {
			t.Fatal("no reset requested after a 10 s press")
		}
		// Released after the reset: no pairing window.
		d.board.sim.Release(sim.PairButton)
		time.Sleep(time.Second)
		synctest.Wait()
		if _, until, _ := d.pairing.Window(); !until.IsZero() {
			t.Fatal("the release after a reset opened the pairing window")
		}
	})
}

// TestBoardResetStopsRun: the board's reset request stops the running
// daemon with ErrFactoryReset.
func TestBoardResetStopsRun(t *testing.T) {
	d, err := New(passthroughConfig(t), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(context.Background()) }()
	d.board.events.resetHold()
	if err := <-done; !errors.Is(err, ErrFactoryReset) {
		t.Fatalf("Run after the board's reset: %v", err)
	}
}

func TestBoardDoorbellAndPIREvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := boardDaemon(t)
		rang := make(chan struct{}, 4)
		motion := make(chan bool, 4)
		d.board.events.ring = func() { rang <- struct{}{} }
		d.board.events.motion = func(a bool) { motion <- a }
		runBoard(t, d)

		d.board.sim.Press(sim.Doorbell)
		time.Sleep(board.DefaultDebounce)
		synctest.Wait()
		if len(rang) != 1 {
			t.Fatalf("%d rings 30 ms after the press", len(rang))
		}
		d.board.sim.SetMotion(true)
		time.Sleep(board.DefaultDebounce)
		synctest.Wait()
		if len(motion) != 1 || !<-motion {
			t.Fatal("motion start not reported")
		}
		d.board.sim.SetMotion(false)
		time.Sleep(board.DefaultDebounce)
		synctest.Wait()
		if len(motion) != 1 || <-motion {
			t.Fatal("motion stop not reported")
		}
	})
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
	// In a bubble the kicks come on its clock: at 0, 10, 20 and 30 ms.
	// (The writes to the file do not block.)
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 35*time.Millisecond)
		defer cancel()
		w.run(ctx)
	})
	w.close()
	if b, _ := os.ReadFile(path); string(b) != "\x00\x00\x00\x00V" {
		t.Fatalf("watchdog got %q: want 4 kicks then the magic V", b)
	}
}

// TestStatusLEDShowsRecording checks the LED's recording pattern: a
// paired camera that records shows it.
func TestStatusLEDShowsRecording(t *testing.T) {
	cfg := testConfig(t) // the synthetic camera, recording continuously
	d, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() { cancel(); <-done }()
	p := d.pairing.SetupPayload(d.hostHintFor())
	if code, _ := pairWith(t, d, p.Secret[:], "owner", ""); code != 201 {
		t.Fatalf("pairing: %d", code)
	}
	// The LED follows at the next status refresh, every 2 s
	// (TestPairButtonOpensPairingWindow checks that on a synctest clock):
	// refresh here until the recorder says it records.
	deadline := time.Now().Add(20 * time.Second)
	for {
		d.board.refreshStatus()
		if d.board.status.Pattern()[0] == board.PatternFor(board.Recording)[0] {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("recording %v, LED shows %v", d.recording.rec.Stats().Recording, d.board.status.Pattern())
		}
		time.Sleep(5 * time.Millisecond)
	}
}
