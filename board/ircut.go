package board

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// PulsedIRCut is an IR-cut filter moved by a pulse on one of two coil
// pins (through an H-bridge): the Day pin pulls the filter in, the Night
// pin pushes it out. Between moves both pins rest low, so the coil draws
// no current; both are never driven at once.
type PulsedIRCut struct {
	Day, Night Output
	// Pulse is how long a coil is driven (default 150 ms).
	Pulse time.Duration

	mu sync.Mutex
}

var _ IRCut = (*PulsedIRCut)(nil)

// SetNight moves the filter; it returns after the pulse.
func (c *PulsedIRCut) SetNight(night bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	on, off := c.Day, c.Night
	if night {
		on, off = c.Night, c.Day
	}
	pulse := c.Pulse
	if pulse <= 0 {
		pulse = DefaultPulse
	}
	if err := off.Set(false); err != nil {
		return fmt.Errorf("board: ircut: %w", err)
	}
	if err := on.Set(true); err != nil {
		return errors.Join(fmt.Errorf("board: ircut: %w", err), on.Set(false))
	}
	time.Sleep(pulse)
	if err := on.Set(false); err != nil {
		return fmt.Errorf("board: ircut: %w", err)
	}
	return nil
}

// LevelIRCut is an IR-cut filter driven by one pin held active at night.
type LevelIRCut struct{ Pin Output }

var _ IRCut = LevelIRCut{}

// SetNight sets the pin.
func (c LevelIRCut) SetNight(night bool) error {
	if err := c.Pin.Set(night); err != nil {
		return fmt.Errorf("board: ircut: %w", err)
	}
	return nil
}
