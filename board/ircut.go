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

	// One move at a time: a mover waits on ended while moving, rather
	// than for a mutex held across the pulse, so that it counts as
	// durably blocked in a testing/synctest bubble.
	mu     sync.Mutex
	ended  sync.Cond
	moving bool
}

var _ IRCut = (*PulsedIRCut)(nil)

// SetNight moves the filter; it returns after the pulse. Moves asked for
// together run one after the other.
func (c *PulsedIRCut) SetNight(night bool) error {
	c.mu.Lock()
	if c.ended.L == nil {
		c.ended.L = &c.mu
	}
	for c.moving {
		c.ended.Wait()
	}
	c.moving = true
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.moving = false
		c.mu.Unlock()
		c.ended.Signal()
	}()
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
