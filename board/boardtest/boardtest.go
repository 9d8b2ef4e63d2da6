// Package boardtest holds fakes of the board contracts for tests. Their
// state is in exported fields: lock the embedded mutex to read them while
// the code under test runs. They take no clock: in a testing/synctest
// bubble, time.Now is the bubble's fake time.
package boardtest

import (
	"sync"
	"time"

	"github.com/camd-project/camd/board"
)

// Output is a fake output that records every change.
type Output struct {
	sync.Mutex
	On bool
	// History is every level set, in order, with the time it was set
	// (the bubble's fake time in a testing/synctest bubble).
	History []Level
	// Err, when set, is returned by Set (and the level is not changed).
	Err error
}

// Level is one recorded Set.
type Level struct {
	On bool
	At time.Time
}

var _ board.Output = (*Output)(nil)

// Set records the level.
func (o *Output) Set(on bool) error {
	o.Lock()
	defer o.Unlock()
	if o.Err != nil {
		return o.Err
	}
	o.On = on
	o.History = append(o.History, Level{on, time.Now()})
	return nil
}

// Get returns the level.
func (o *Output) Get() bool {
	o.Lock()
	defer o.Unlock()
	return o.On
}

// Light is a fake light sensor.
type Light struct {
	sync.Mutex
	Level float64
	Err   error
}

var _ board.LightSensor = (*Light)(nil)

// Light returns Level, or Err.
func (l *Light) Light() (float64, error) {
	l.Lock()
	defer l.Unlock()
	return l.Level, l.Err
}

// Set sets Level.
func (l *Light) Set(level float64) {
	l.Lock()
	l.Level = level
	l.Unlock()
}

// IRCut is a fake IR-cut filter that counts its moves.
type IRCut struct {
	sync.Mutex
	Night bool
	Moves int
}

var _ board.IRCut = (*IRCut)(nil)

// SetNight records the move.
func (c *IRCut) SetNight(night bool) error {
	c.Lock()
	defer c.Unlock()
	c.Night = night
	c.Moves++
	return nil
}

// State returns the position and the number of moves.
func (c *IRCut) State() (night bool, moves int) {
	c.Lock()
	defer c.Unlock()
	return c.Night, c.Moves
}
