package board

import (
	"errors"
	"time"
)

// Output is a digital output: an LED, one coil of an IR-cut filter. On
// means active; a driver applies the pin's polarity.
type Output interface {
	Set(on bool) error
}

// Input is a digital input: a button, a PIR, a day/night photo switch.
// Active means pressed, motion, or light; a driver applies the pin's
// polarity.
type Input interface {
	// Active reports the input's level now, without debouncing.
	Active() bool
	// WaitForEdge waits up to timeout for the level to change and
	// reports whether it may have.
	WaitForEdge(timeout time.Duration) bool
}

// LightSensor measures ambient light.
type LightSensor interface {
	// Light is the light level from 0 (dark) to 1 (bright).
	Light() (float64, error)
}

// IRCut moves the IR-cut filter.
type IRCut interface {
	// SetNight takes the filter out of the light path (night, the
	// sensor sees the IR LEDs' light) or puts it back (day, true
	// colours).
	SetNight(night bool) error
}

// SpeakerRate is the rate of the PCM a Speaker plays: 48 kHz, as the
// microphone captures.
const SpeakerRate = 48000

// Speaker plays sound: a doorbell call's phone audio, the ring-back
// tone. Play queues mono 16-bit PCM at SpeakerRate and returns without
// waiting for it to be heard.
type Speaker interface {
	Play(pcm []int16) error
}

// Board is one board's hardware. A field is nil when the board lacks
// that part.
type Board struct {
	// Name is the profile's name ("sim", "rpi", ...).
	Name       string
	IRCut      IRCut
	IRLED      Output
	StatusLED  Output
	PairButton Input
	Doorbell   Input
	PIR        Input
	Light      LightSensor
	Speaker    Speaker
	// Chime strikes a mechanical chime when held on for ChimePulse.
	Chime      Output
	ChimePulse time.Duration
	// Debounce is how long an input must stay at a level before it
	// counts (from the profile; default 30 ms).
	Debounce time.Duration
	// Release turns the outputs off and frees the pins; nil when there
	// is nothing to free.
	Release func() error
}

// Close releases the board. It is safe to call twice.
func (b *Board) Close() error {
	if b == nil || b.Release == nil {
		return nil
	}
	r := b.Release
	b.Release = nil
	return r()
}

// Errors of the board layer.
var (
	// ErrProfile marks every board profile error.
	ErrProfile = errors.New("board: profile")
	// ErrNoPin is a profile naming a pin the board does not have.
	ErrNoPin = errors.New("board: no such pin")
)
