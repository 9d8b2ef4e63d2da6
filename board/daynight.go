package board

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Mode is the owner's night mode setting.
type Mode string

// Night modes.
const (
	// ModeAuto follows the light level.
	ModeAuto Mode = "auto"
	// ModeDay keeps the filter in and the IR LEDs off.
	ModeDay Mode = "day"
	// ModeNight keeps the filter out and the IR LEDs on.
	ModeNight Mode = "night"
)

// DayNightOptions configure a DayNight. The zero value of each field
// means its default.
type DayNightOptions struct {
	// Light is the light level in auto mode: the board's sensor, or the
	// image's brightness where there is none. Without it auto stays day.
	Light LightSensor
	// IRCut and IRLED are moved together; either may be nil.
	IRCut IRCut
	IRLED Output
	// NightBelow and DayAbove are the thresholds (defaults 0.15 and
	// 0.35): night comes when the light stays below NightBelow, day when
	// it stays above DayAbove. Between them nothing changes, so a level
	// hovering near one threshold never flaps.
	NightBelow, DayAbove float64
	// Hold is how long the light must stay past a threshold before the
	// switch (default 10 s): headlights and shadows do not switch.
	Hold time.Duration
	// Poll is how often the light is read (default 1 s).
	Poll time.Duration
	// OnChange is called after each move, and once at start, on Run's
	// goroutine.
	OnChange func(night bool)
	Logger   *slog.Logger
}

// DayNight switches the IR-cut filter and the IR LEDs between day and
// night, automatically with hysteresis or as the owner forces it. Its
// methods are safe to call from several goroutines.
type DayNight struct {
	opts DayNightOptions
	log  *slog.Logger

	mu      sync.Mutex
	mode    Mode
	night   bool
	changed chan struct{}

	// Run's own: when the light first crossed the threshold, and
	// whether the last reading failed (logged once).
	since   time.Time
	readErr bool
}

// NewDayNight returns a controller in auto mode. Nothing moves until Run.
func NewDayNight(opts DayNightOptions) (*DayNight, error) {
	if opts.NightBelow == 0 {
		opts.NightBelow = 0.15
	}
	if opts.DayAbove == 0 {
		opts.DayAbove = 0.35
	}
	if opts.NightBelow < 0 || opts.DayAbove > 1 || opts.NightBelow >= opts.DayAbove {
		return nil, fmt.Errorf("board: day/night thresholds %.2f/%.2f must satisfy 0 <= NightBelow < DayAbove <= 1", opts.NightBelow, opts.DayAbove)
	}
	if opts.Hold <= 0 {
		opts.Hold = 10 * time.Second
	}
	if opts.Poll <= 0 {
		opts.Poll = time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &DayNight{opts: opts, log: opts.Logger, mode: ModeAuto, changed: make(chan struct{}, 1)}, nil
}

// SetMode changes the mode; Run applies it at once.
func (d *DayNight) SetMode(m Mode) {
	d.mu.Lock()
	changed := d.mode != m
	d.mode = m
	d.mu.Unlock()
	if changed {
		select {
		case d.changed <- struct{}{}:
		default:
		}
	}
}

// Mode is the current mode.
func (d *DayNight) Mode() Mode {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.mode
}

// Night reports whether the night position is applied.
func (d *DayNight) Night() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.night
}

// Run moves the filter and the LEDs until ctx ends. It starts at once in
// the position the mode and the light call for (no hold at start), then
// reads the light every Poll.
func (d *DayNight) Run(ctx context.Context) {
	d.apply(d.target(true, time.Now()), true)
	for {
		t := time.NewTimer(d.opts.Poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-d.changed:
			t.Stop()
			d.since = time.Time{}
			d.apply(d.target(true, time.Now()), false)
		case <-t.C:
			d.apply(d.target(false, time.Now()), false)
		}
	}
}

// target is the position to be in now; at once skips the hold (start,
// or a change of mode).
func (d *DayNight) target(atOnce bool, now time.Time) bool {
	d.mu.Lock()
	mode, night := d.mode, d.night
	d.mu.Unlock()
	switch mode {
	case ModeDay:
		return false
	case ModeNight:
		return true
	}
	if d.opts.Light == nil {
		return false
	}
	level, err := d.opts.Light.Light()
	if err != nil {
		if !d.readErr {
			d.log.Warn("board: light sensor", "err", err)
		}
		d.readErr = true
		return night
	}
	d.readErr = false
	if atOnce {
		if level < d.opts.NightBelow {
			return true
		}
		if level > d.opts.DayAbove {
			return false
		}
		return night
	}
	return d.step(night, level, now)
}

// step is the hysteresis: the position after a reading of level at now.
func (d *DayNight) step(night bool, level float64, now time.Time) bool {
	crossing := level < d.opts.NightBelow
	if night {
		crossing = level > d.opts.DayAbove
	}
	if !crossing {
		d.since = time.Time{}
		return night
	}
	if d.since.IsZero() {
		d.since = now
	}
	if now.Sub(d.since) >= d.opts.Hold {
		d.since = time.Time{}
		return !night
	}
	return night
}

// apply moves the filter and the LEDs to night (or day) if they are not
// there already (or always, when force).
func (d *DayNight) apply(night, force bool) {
	d.mu.Lock()
	same := d.night == night
	d.mu.Unlock()
	if same && !force {
		return
	}
	// Night: filter out, then light; day: light off, then filter in.
	if !night {
		d.led(false)
	}
	if d.opts.IRCut != nil {
		if err := d.opts.IRCut.SetNight(night); err != nil {
			d.log.Warn("board: IR-cut filter", "err", err)
		}
	}
	if night {
		d.led(true)
	}
	d.mu.Lock()
	d.night = night
	d.mu.Unlock()
	if !same {
		d.log.Info("board: day/night", "night", night)
	}
	if d.opts.OnChange != nil {
		d.opts.OnChange(night)
	}
}

func (d *DayNight) led(on bool) {
	if d.opts.IRLED == nil {
		return
	}
	if err := d.opts.IRLED.Set(on); err != nil {
		d.log.Warn("board: IR LED", "err", err)
	}
}
