package device

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/camd-project/camd/board"
	"github.com/camd-project/camd/board/hw"
	"github.com/camd-project/camd/board/sim"
)

// boardState is the board and what runs on it.
type boardState struct {
	b   *board.Board
	sim *sim.Board // with board: sim, for tests to press buttons

	status   *board.StatusLight // nil without a status LED
	dayNight *board.DayNight    // nil without an IR-cut filter or IR LEDs
	watchers []*board.Watcher
	events   boardEvents
	watchdog *watchdog

	wg sync.WaitGroup
}

// boardEvents are what the board's inputs trigger. The defaults
// (defaultBoardEvents) open the pairing window on a short press of the
// pair button and factory-reset on a 10 s press; the doorbell and the PIR
// are logged until calls and motion recording use them.
type boardEvents struct {
	pairPress, resetHold, ring func()
	motion                     func(active bool)
}

func (d *Daemon) defaultBoardEvents() boardEvents {
	return boardEvents{
		pairPress: func() {
			d.log.Info("board: pair button pressed: opening pairing")
			if err := d.pairing.OpenWindow(); err != nil {
				d.log.Warn("board: cannot open pairing", "err", err)
			}
			d.refreshStatus()
		},
		resetHold: func() {
			d.log.Warn("board: pair button held for 10 s: factory reset")
			d.requestReset()
		},
		ring:   func() { d.log.Info("board: doorbell pressed") },
		motion: func(active bool) { d.log.Debug("board: PIR", "motion", active) },
	}
}

// sourceBrightness is the light level taken from the picture, for a
// board without a light sensor: the brightness of whatever source runs.
type sourceBrightness struct{ l *liveSource }

type brightnessMeter interface{ Brightness() float64 }

var errNoBrightness = errors.New("board: the source does not measure its brightness")

func (s sourceBrightness) Light() (float64, error) {
	if m, ok := s.l.current().(brightnessMeter); ok {
		return m.Brightness(), nil
	}
	return 0, errNoBrightness
}

// initBoard opens the board the configuration names and prepares what
// runs on it: the status LED, day/night and the inputs. A button held
// down now (through a restart) acts only once released.
func (d *Daemon) initBoard() error {
	bs := &d.board
	if d.cfg.Board == "sim" {
		s, err := sim.New(sim.Options{})
		if err != nil {
			return err
		}
		bs.sim, bs.b = s, s.Board()
	} else {
		p, err := board.LoadProfile(d.cfg.Board)
		if err != nil {
			return err
		}
		if bs.b, err = hw.Open(p, hw.Options{}); err != nil {
			return err
		}
	}
	b, s := bs.b, d.settings.store.Get()
	d.log.Info("board: opened", "board", b.Name)

	if b.StatusLED != nil {
		bs.status = board.NewStatusLight(b.StatusLED, board.StatusLightOptions{Logger: d.log})
		bs.status.SetEnabled(s.StatusLED)
		d.refreshStatus()
		d.pairing.OnChange(d.refreshStatus)
	}

	if b.IRCut != nil || b.IRLED != nil {
		opts := board.DayNightOptions{Light: b.Light, IRCut: b.IRCut, IRLED: b.IRLED, Logger: d.log}
		if b.Light == nil {
			// The picture brightens under the IR LEDs: a wider band and a
			// longer hold keep the image from switching itself back.
			opts.Light = sourceBrightness{d.settings.live}
			opts.NightBelow, opts.DayAbove, opts.Hold = 0.1, 0.5, 30*time.Second
		}
		var err error
		if bs.dayNight, err = board.NewDayNight(opts); err != nil {
			return err
		}
		bs.dayNight.SetMode(board.Mode(s.NightMode))
	}

	bs.events = d.defaultBoardEvents()
	d.watchInputs()
	bs.watchdog = openWatchdog(d.cfg.Watchdog, d.log)
	return nil
}

// watchInputs prepares a watcher for each input the board has. Each reads
// its input's level now: a button held through a restart is ignored
// until released.
func (d *Daemon) watchInputs() {
	bs := &d.board
	b := bs.b
	bs.watchers = nil
	watch := func(in board.Input, opts board.WatchOptions) {
		if in == nil {
			return
		}
		opts.Debounce = b.Debounce
		bs.watchers = append(bs.watchers, board.NewWatcher(in, opts))
	}
	watch(b.PairButton, board.WatchOptions{
		Hold:    board.ResetHold,
		OnPress: func() { bs.events.pairPress() },
		OnHold:  func() { bs.events.resetHold() },
	})
	watch(b.Doorbell, board.WatchOptions{OnDown: func() { bs.events.ring() }})
	watch(b.PIR, board.WatchOptions{OnChange: func(a bool) { bs.events.motion(a) }})
}

// refreshStatus shows pairing's and recording's state on the status
// LED: unpaired, pairing window open, recording, and an error when
// pairing is locked or the card fails.
func (d *Daemon) refreshStatus() {
	st := d.board.status
	if st == nil {
		return
	}
	open, until, locked := d.pairing.Window()
	recording, cardFailing := false, false
	if rs := &d.recording; rs.rec != nil {
		recording = rs.rec.Stats().Recording
		cardFailing = rs.store != nil && rs.store.Paused() != nil
	}
	st.Set(board.Unpaired, !d.pairing.Paired())
	st.Set(board.Pairing, open && !until.IsZero())
	st.Set(board.Recording, recording)
	st.Set(board.Failure, locked || cardFailing)
}

// startBoard runs the board's behaviour until ctx ends.
func (d *Daemon) startBoard(ctx context.Context) {
	bs := &d.board
	for _, w := range bs.watchers {
		bs.wg.Go(func() { w.Run(ctx) })
	}
	if bs.status != nil {
		bs.wg.Go(func() { bs.status.Run(ctx) })
		// The pairing window closes by itself: look again now and then.
		bs.wg.Go(func() {
			t := time.NewTicker(2 * time.Second)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					d.refreshStatus()
				}
			}
		})
	}
	if bs.dayNight != nil {
		bs.wg.Go(func() { bs.dayNight.Run(ctx) })
	}
	if bs.watchdog != nil {
		bs.wg.Go(func() { bs.watchdog.run(ctx) })
	}
}

// closeBoard waits for the board's goroutines (their context has ended),
// then turns the outputs off and frees the pins.
func (d *Daemon) closeBoard() {
	d.board.wg.Wait()
	if d.board.watchdog != nil {
		d.board.watchdog.close()
	}
	if err := d.board.b.Close(); err != nil {
		d.log.Warn("board: close", "err", err)
	}
}
