package device

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/camd-project/camd/board"
	"github.com/camd-project/camd/board/alsa"
	"github.com/camd-project/camd/board/hw"
	"github.com/camd-project/camd/board/sim"
	"github.com/camd-project/camd/device/pairing"
	"github.com/camd-project/camd/device/settings"
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

	// What the status LED shows.
	pairing   *pairing.Manager
	recording *recordingState

	// A ringing call: the chime, the LED and the ring-back tone
	// (ringer.go).
	rings      chan ringRequest
	ringerOn   atomic.Bool   // start has started the ringer
	ringerDone chan struct{} // closed once the ringer stopped
	volume     func() float64

	log    *slog.Logger
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// boardEvents are what the board's inputs trigger: the daemon opens the
// pairing window on a short press of the pair button, factory-resets on
// a 10 s press, records the PIR's motion and rings on the doorbell.
type boardEvents struct {
	pairPress, resetHold, ring func()
	// setupHold is the pair button released after setupHold (5 s) and
	// before the 10 s of a factory reset: setup mode (docs/network.md).
	setupHold func()
	motion    func(active bool)
}

// setupHold is how long the pair button is held for setup mode; it is
// released before board.ResetHold.
const setupHold = 5 * time.Second

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

// boardOptions is what the board's behaviour needs from the rest of the
// daemon.
type boardOptions struct {
	events    boardEvents
	settings  settings.Settings // night mode and status LED at start
	live      *liveSource       // the picture's brightness, without a light sensor
	pairing   *pairing.Manager
	recording *recordingState
	watchdog  string         // the watchdog device (Config.Watchdog)
	volume    func() float64 // the speaker_volume setting, 0 to 1
	echo      *sim.Echo      // the simulated board's speaker-to-microphone loop (nil: none)
	// speakerFile is where the simulated speaker also writes what it
	// plays ("": nowhere).
	speakerFile string
	log         *slog.Logger
}

// openBoard opens the board the configuration names and prepares what
// runs on it: the status LED, day/night and the inputs. A button held
// down now (through a restart) acts only once released.
func openBoard(name string, o boardOptions) (*boardState, error) {
	bs := &boardState{events: o.events, pairing: o.pairing, recording: o.recording, log: o.log,
		rings: make(chan ringRequest), ringerDone: make(chan struct{}), volume: o.volume}
	if bs.volume == nil {
		bs.volume = func() float64 { return 1 }
	}
	if name == "sim" {
		s, err := sim.New(sim.Options{Echo: o.echo})
		if err != nil {
			return nil, err
		}
		bs.sim, bs.b = s, s.Board()
		if o.speakerFile != "" {
			if err := recordSpeaker(bs.b, o.speakerFile); err != nil {
				bs.b.Close()
				return nil, err
			}
		}
	} else {
		p, err := board.LoadProfile(name)
		if err != nil {
			return nil, err
		}
		if bs.b, err = hw.Open(p, hw.Options{}); err != nil {
			return nil, err
		}
		if p.Speaker != nil {
			openSpeaker(bs.b, p.Speaker.ALSA, o.log)
		}
	}
	b, s := bs.b, o.settings
	bs.log.Info("board: opened", "board", b.Name)

	if b.StatusLED != nil {
		bs.status = board.NewStatusLight(b.StatusLED, board.StatusLightOptions{Logger: bs.log})
		bs.status.SetEnabled(s.StatusLED)
		bs.refreshStatus()
	}

	if b.IRCut != nil || b.IRLED != nil {
		opts := board.DayNightOptions{Light: b.Light, IRCut: b.IRCut, IRLED: b.IRLED, Logger: bs.log}
		if b.Light == nil {
			// The picture brightens under the IR LEDs: a wider band and a
			// longer hold keep the image from switching itself back.
			opts.Light = sourceBrightness{o.live}
			opts.NightBelow, opts.DayAbove, opts.Hold = 0.1, 0.5, 30*time.Second
		}
		var err error
		if bs.dayNight, err = board.NewDayNight(opts); err != nil {
			bs.b.Close()
			return nil, err
		}
		bs.dayNight.SetMode(board.Mode(s.NightMode))
	}

	bs.watchInputs()
	bs.watchdog = openWatchdog(o.watchdog, bs.log)
	return bs, nil
}

// recordSpeaker has the board's speaker also write what it plays to
// the file at path (raw 48 kHz mono 16-bit little-endian PCM), closed
// with the board.
func recordSpeaker(b *board.Board, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("board: speaker file: %w", err)
	}
	b.Speaker = fileSpeaker{b.Speaker, f}
	release := b.Release
	b.Release = func() error {
		f.Close()
		if release != nil {
			return release()
		}
		return nil
	}
	return nil
}

// fileSpeaker is a speaker that also writes what it plays to a file.
type fileSpeaker struct {
	board.Speaker
	f *os.File
}

func (s fileSpeaker) Play(pcm []int16) error {
	if err := binary.Write(s.f, binary.LittleEndian, pcm); err != nil {
		return fmt.Errorf("board: speaker file: %w", err)
	}
	return s.Speaker.Play(pcm)
}

// Playout is the speaker's (board.PlayoutSpeaker), when it reports it.
func (s fileSpeaker) Playout(dst []int16, at time.Time) bool {
	ps, ok := s.Speaker.(board.PlayoutSpeaker)
	return ok && ps.Playout(dst, at)
}

// openSpeaker gives the board its ALSA speaker, closed with the board. A
// speaker that cannot be opened is logged: calls work without it.
func openSpeaker(b *board.Board, device string, log *slog.Logger) {
	sp, err := alsa.Open(device, log)
	if err != nil {
		log.Warn("board: no speaker", "device", device, "err", err)
		return
	}
	b.Speaker = sp
	release := b.Release
	b.Release = func() error {
		sp.Close()
		if release != nil {
			return release()
		}
		return nil
	}
}

// watchInputs prepares a watcher for each input the board has. Each reads
// its input's level now: a button held through a restart is ignored
// until released.
func (bs *boardState) watchInputs() {
	b := bs.b
	bs.watchers = nil
	watch := func(in board.Input, opts board.WatchOptions) {
		if in == nil {
			return
		}
		opts.Debounce = b.Debounce
		bs.watchers = append(bs.watchers, board.NewWatcher(in, opts))
	}
	var down time.Time // callbacks run one at a time
	watch(b.PairButton, board.WatchOptions{
		Hold:   board.ResetHold,
		OnDown: func() { down = time.Now() },
		OnPress: func() {
			if time.Since(down) >= setupHold && bs.events.setupHold != nil {
				bs.events.setupHold()
				return
			}
			bs.events.pairPress()
			bs.refreshStatus()
		},
		OnHold: func() { bs.events.resetHold() },
	})
	// The doorbell rings on its first edge: a visitor's press is never
	// shorter than the debounce, and a chime button's bounces follow
	// that edge. A glitch on the line rings too, at most once a call (a
	// press during a call is ignored).
	watch(b.Doorbell, board.WatchOptions{Leading: true, OnDown: func() { bs.events.ring() }})
	watch(b.PIR, board.WatchOptions{OnChange: func(a bool) { bs.events.motion(a) }})
}

// refreshStatus shows pairing's and recording's state on the status
// LED: unpaired, pairing window open, recording, and an error when
// pairing is locked or the card fails.
func (bs *boardState) refreshStatus() {
	st := bs.status
	if st == nil {
		return
	}
	open, until, locked := bs.pairing.Window()
	recording, cardFailing := bs.recording.activity()
	st.Set(board.Unpaired, !bs.pairing.Paired())
	st.Set(board.Pairing, open && !until.IsZero())
	st.Set(board.Recording, recording)
	st.Set(board.Failure, locked || cardFailing)
}

// settingsChanged applies the night mode and the status LED settings.
func (bs *boardState) settingsChanged(before, after settings.Settings) {
	if before.NightMode != after.NightMode && bs.dayNight != nil {
		bs.dayNight.SetMode(board.Mode(after.NightMode))
	}
	if before.StatusLED != after.StatusLED && bs.status != nil {
		bs.status.SetEnabled(after.StatusLED)
	}
}

// start runs the board's behaviour until ctx ends (or close).
func (bs *boardState) start(ctx context.Context) {
	ctx, bs.cancel = context.WithCancel(ctx)
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
					bs.refreshStatus()
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
	bs.ringerOn.Store(true)
	bs.wg.Go(func() {
		defer close(bs.ringerDone)
		bs.runRinger(ctx)
	})
}

// close stops the board's goroutines, then turns the outputs off and
// frees the pins.
func (bs *boardState) close() {
	if bs.cancel != nil {
		bs.cancel()
	}
	bs.wg.Wait()
	if bs.watchdog != nil {
		bs.watchdog.close()
	}
	if err := bs.b.Close(); err != nil {
		bs.log.Warn("board: close", "err", err)
	}
}

// boardEventsFor is what the daemon does on the board's inputs.
func boardEventsFor(p *pairing.Manager, rec *recordingState, cs *callState, reset resetSignal, ns *networkState, log *slog.Logger) boardEvents {
	return boardEvents{
		setupHold: func() {
			if ns == nil || ns.setup == nil {
				log.Info("board: pair button held for 5 s: no Wi-Fi to set up")
				return
			}
			log.Info("board: pair button held for 5 s: setup mode")
			if err := ns.setup.Enter(context.Background(), "pair button held"); err != nil {
				log.Warn("board: cannot enter setup mode", "err", err)
			}
		},
		pairPress: func() {
			log.Info("board: pair button pressed: opening pairing")
			if err := p.OpenWindow(); err != nil {
				log.Warn("board: cannot open pairing", "err", err)
			}
		},
		resetHold: func() {
			log.Warn("board: pair button held for 10 s: factory reset")
			reset.request()
		},
		ring: func() {
			log.Info("board: doorbell pressed")
			if cs != nil {
				cs.pressed()
			}
		},
		motion: func(active bool) {
			log.Debug("board: PIR", "motion", active)
			rec.pir(active)
		},
	}
}
