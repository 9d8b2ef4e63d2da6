package synthetic

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/camd-project/camd/media/synthetic/encoder"
)

// Defaults of Options.
const (
	DefaultWidth   = 640
	DefaultHeight  = 480
	DefaultFPS     = encoder.DefaultFPS     // 30
	DefaultBitrate = encoder.DefaultBitrate // 2 Mbps
	DefaultToneHz  = 440
)

// Options configure the synthetic camera. The zero value means defaults.
type Options struct {
	// Width and Height of the picture (default 640x480), even,
	// 16..3840 x 16..2160.
	Width, Height int
	// FPS is the frame rate (default 30, at most 60: openh264's rate
	// control budgets for no more).
	FPS int
	// Bitrate is the video bitrate in bits per second while the hub asks
	// for none (default 2 Mbps).
	Bitrate int
	// MinBitrate and MaxBitrate bound the hub's TargetBitrate (defaults
	// 150 kbps and Bitrate).
	MinBitrate, MaxBitrate int
	// KeyframeInterval is the longest time between IDRs (default 2 s);
	// negative means IDRs only at the start and on request.
	KeyframeInterval time.Duration
	// ToneHz is the pitch of the beep (default 440 Hz; every tenth second
	// beeps an octave higher), 20..8000.
	ToneHz int
	// NoAudio turns the audio track off.
	NoAudio bool
	// Flat leaves the grain out of the picture. The flat picture needs
	// only about 0.2 Mbps at 640x480 at the encoder's best quality, so
	// the output stays below any higher target.
	Flat bool
	// Logger receives the source's messages (nil discards them).
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.Width == 0 {
		o.Width = DefaultWidth
	}
	if o.Height == 0 {
		o.Height = DefaultHeight
	}
	if o.FPS == 0 {
		o.FPS = DefaultFPS
	}
	if o.Bitrate == 0 {
		o.Bitrate = DefaultBitrate
	}
	if o.ToneHz == 0 {
		o.ToneHz = DefaultToneHz
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

func (o Options) h264() encoder.H264Options {
	return encoder.H264Options{
		Width:            o.Width,
		Height:           o.Height,
		FPS:              o.FPS,
		Bitrate:          o.Bitrate,
		MinBitrate:       o.MinBitrate,
		MaxBitrate:       o.MaxBitrate,
		KeyframeInterval: o.KeyframeInterval,
		Logger:           o.Logger,
	}
}

// Validate reports the first option out of range, naming the field, its
// value and the allowed range. Zero values are replaced by their defaults
// first.
func (o Options) Validate() error {
	o = o.withDefaults()
	if err := o.h264().ValidateAs("synthetic"); err != nil {
		return err
	}
	if o.ToneHz < 20 || o.ToneHz > 8000 {
		return fmt.Errorf("synthetic: ToneHz %d must be within 20..8000", o.ToneHz)
	}
	return nil
}
