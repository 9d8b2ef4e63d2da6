package encoder

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// ErrNoCgo is returned by NewH264 and NewOpus in a build without cgo:
// openh264 and Opus are C libraries.
var ErrNoCgo = errors.New("encoder: H.264 and Opus encoding need a cgo build")

// Opus audio parameters used by camd: 48 kHz, 20 ms packets.
const (
	OpusSampleRate = 48000
	OpusFrame      = OpusSampleRate / 50 // samples per channel in a packet
)

// Limits of H264Options, also used by the sources that embed them.
const (
	MinSize    = 16
	MaxWidth   = 3840
	MaxHeight  = 2160
	MaxFPS     = 60
	MinBitrate = 50_000
	MaxBitrate = 20_000_000
)

// Defaults of H264Options. NewH264 requires a size; DefaultWidth and
// DefaultHeight are the size SourceDefaults gives the sources.
const (
	DefaultWidth            = 640
	DefaultHeight           = 480
	DefaultFPS              = 30
	DefaultBitrate          = 2_000_000
	DefaultMinBitrate       = 150_000
	DefaultKeyframeInterval = 2 * time.Second
)

// H264Options configure an H264 encoder. The zero value of every field but
// Width and Height means its default; SourceDefaults fills those too.
type H264Options struct {
	// Width and Height of the pictures, even, MinSize..MaxWidth/MaxHeight
	// (required by NewH264; DefaultWidth x DefaultHeight in
	// SourceDefaults).
	Width, Height int
	// FPS is the picture rate that the rate control budgets for
	// (default 30, at most MaxFPS). Feed pictures at this rate.
	FPS int
	// Bitrate is the target in bits per second used while the publisher
	// asks for none (default 2 Mbps).
	Bitrate int
	// MinBitrate and MaxBitrate bound the publisher's TargetBitrate
	// (defaults 150 kbps and Bitrate).
	MinBitrate, MaxBitrate int
	// KeyframeInterval is the longest time between IDRs (default 2 s);
	// negative means IDRs only on the first picture and on request.
	KeyframeInterval time.Duration
	// Logger receives debug messages (nil discards them).
	Logger *slog.Logger
}

func (o H264Options) withDefaults() H264Options {
	if o.FPS == 0 {
		o.FPS = DefaultFPS
	}
	if o.Bitrate == 0 {
		o.Bitrate = DefaultBitrate
	}
	if o.MinBitrate == 0 {
		o.MinBitrate = min(DefaultMinBitrate, o.Bitrate)
	}
	if o.MaxBitrate == 0 {
		o.MaxBitrate = max(o.Bitrate, o.MinBitrate)
	}
	if o.KeyframeInterval == 0 {
		o.KeyframeInterval = DefaultKeyframeInterval
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// SourceDefaults fills in what the options of an encoding source
// (synthetic, capture) leave zero: it returns the source's logger, log or
// one that discards, and its video options with every zero field replaced
// by its default, Width and Height included, and a nil Logger by the
// source's, so that the encoder logs where the source does.
func SourceDefaults(video H264Options, log *slog.Logger) (H264Options, *slog.Logger) {
	log = cmp.Or(log, slog.New(slog.DiscardHandler))
	video.Width = cmp.Or(video.Width, DefaultWidth)
	video.Height = cmp.Or(video.Height, DefaultHeight)
	video.Logger = cmp.Or(video.Logger, log)
	return video.withDefaults(), log
}

// validate checks o after defaults are applied. Errors name the field, its
// value and the allowed range; prefix names the package of the caller
// ("synthetic", "capture").
func (o H264Options) validate(prefix string) error {
	switch {
	case o.Width < MinSize || o.Width > MaxWidth || o.Width%2 != 0:
		return fmt.Errorf("%s: Width %d must be even and within %d..%d", prefix, o.Width, MinSize, MaxWidth)
	case o.Height < MinSize || o.Height > MaxHeight || o.Height%2 != 0:
		return fmt.Errorf("%s: Height %d must be even and within %d..%d", prefix, o.Height, MinSize, MaxHeight)
	case o.FPS < 1 || o.FPS > MaxFPS:
		return fmt.Errorf("%s: FPS %d must be within 1..%d", prefix, o.FPS, MaxFPS)
	case o.Bitrate < MinBitrate || o.Bitrate > MaxBitrate:
		return fmt.Errorf("%s: Bitrate %d must be within %d..%d bits per second", prefix, o.Bitrate, MinBitrate, MaxBitrate)
	case o.MinBitrate < MinBitrate || o.MinBitrate > o.Bitrate:
		return fmt.Errorf("%s: MinBitrate %d must be within %d..Bitrate (%d)", prefix, o.MinBitrate, MinBitrate, o.Bitrate)
	case o.MaxBitrate < o.Bitrate || o.MaxBitrate > MaxBitrate:
		return fmt.Errorf("%s: MaxBitrate %d must be within Bitrate (%d)..%d", prefix, o.MaxBitrate, o.Bitrate, MaxBitrate)
	}
	return nil
}

// Validate checks the options as NewH264 will use them (zero values
// replaced by defaults).
func (o H264Options) Validate() error { return o.withDefaults().validate("encoder") }

// ValidateAs is Validate with errors prefixed by a caller's package name,
// for sources whose options hold these.
func (o H264Options) ValidateAs(prefix string) error { return o.withDefaults().validate(prefix) }

// H264Stats count what an H264 encoder did.
type H264Stats struct {
	// Pictures fed to Encode.
	Pictures uint64
	// Frames published, and their Bytes.
	Frames uint64
	Bytes  uint64
	// Keyframes published (IDR access units).
	Keyframes uint64
	// Requested keyframes taken from the publisher.
	Requested uint64
	// Skipped pictures: dropped by the rate control, or before the first
	// IDR.
	Skipped uint64
}
