package synthetic

import (
	"cmp"
	"fmt"
	"log/slog"

	"github.com/camd-project/camd/media"
	"github.com/camd-project/camd/media/encoder"
)

// DefaultToneHz is the default pitch of the beep.
const DefaultToneHz = 440

// Options configure the synthetic camera. The zero value means defaults.
type Options struct {
	// Video is the size of the picture (default 640x480, even,
	// 16..3840 x 16..2160), its frame rate (default 30, at most 60:
	// openh264's rate control budgets for no more) and the encoder's
	// bitrate and keyframe settings (defaults in package encoder).
	// Video.Logger defaults to Logger.
	Video encoder.H264Options
	// ToneHz is the pitch of the beep (default 440 Hz; every tenth second
	// beeps an octave higher), 20..8000.
	ToneHz int
	// NoAudio turns the audio track off.
	NoAudio bool
	// G711 also carries the sound as G.711 µ-law on each audio frame
	// (media.Frame.G711), for RTSP clients and call phones without Opus;
	// off, nothing is
	// encoded for it.
	G711 bool
	// Mic, when set, receives each block of the tone before it is
	// encoded, and may change it (media.MicFunc).
	Mic media.MicFunc
	// Flat leaves the grain out of the picture. The flat picture needs
	// only about 0.2 Mbps at 640x480 at the encoder's best quality, so
	// the output stays below any higher target.
	Flat bool
	// Logger receives the source's messages (nil discards them).
	Logger *slog.Logger
	// Raw, when set, receives every picture before it is encoded (see
	// RawFunc and Source.SetRaw).
	Raw RawFunc
}

func (o Options) withDefaults() Options {
	o.ToneHz = cmp.Or(o.ToneHz, DefaultToneHz)
	o.Video, o.Logger = encoder.SourceDefaults(o.Video, o.Logger)
	return o
}

// Validate reports the first option out of range, naming the field, its
// value and the allowed range. Zero values are replaced by their defaults
// first.
func (o Options) Validate() error {
	o = o.withDefaults()
	if err := o.Video.ValidateAs("synthetic"); err != nil {
		return err
	}
	if o.ToneHz < 20 || o.ToneHz > 8000 {
		return fmt.Errorf("synthetic: ToneHz %d must be within 20..8000", o.ToneHz)
	}
	return nil
}
