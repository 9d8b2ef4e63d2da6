package capture

import (
	"errors"
	"log/slog"
	"time"

	"github.com/camd-project/camd/media"
	"github.com/camd-project/camd/media/synthetic/encoder"
)

// Errors of Run.
var (
	// ErrNoDevice means the device path does not exist.
	ErrNoDevice = errors.New("no such device")
	// ErrUnavailable is returned by Run in builds without V4L2 support
	// (not Linux, or no cgo).
	ErrUnavailable = errors.New("capture: V4L2 capture is not available in this build")
)

// Defaults of Options.
const (
	DefaultDevice = "/dev/video0"
	DefaultWidth  = 640
	DefaultHeight = 480
)

// Options configure a V4L2 camera source. The zero value means defaults.
type Options struct {
	// Device is the V4L2 device node (default /dev/video0); a symlink
	// such as /dev/v4l/by-id/... works too.
	Device string
	// Width and Height of the capture (default 640x480): the camera must
	// offer this size in a format mediadevices can convert to I420 (I420,
	// NV12, NV21, YUYV, UYVY or MJPEG).
	Width, Height int
	// FPS asks the camera for a frame rate and budgets the encoder for it
	// (default 30, at most 60).
	FPS int
	// Bitrate is the H.264 target in bits per second while the hub asks
	// for none (default 2 Mbps).
	Bitrate int
	// MinBitrate and MaxBitrate bound the hub's TargetBitrate (defaults
	// 150 kbps and Bitrate).
	MinBitrate, MaxBitrate int
	// KeyframeInterval is the longest time between IDRs (default 2 s);
	// negative means IDRs only at the start and on request.
	KeyframeInterval time.Duration
	// Logger receives the source's messages (nil discards them).
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.Device == "" {
		o.Device = DefaultDevice
	}
	if o.Width == 0 {
		o.Width = DefaultWidth
	}
	if o.Height == 0 {
		o.Height = DefaultHeight
	}
	if o.FPS == 0 {
		o.FPS = encoder.DefaultFPS
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
// first. It does not look for the device: Run does.
func (o Options) Validate() error {
	return o.withDefaults().h264().ValidateAs("capture")
}

// Source captures a V4L2 camera and encodes it to H.264 with openh264.
type Source struct {
	opts Options
	log  *slog.Logger
}

var _ media.Source = (*Source)(nil)

// New checks opts and returns a camera source. The device is opened by Run,
// so a camera plugged in later is found when the supervisor restarts it.
func New(opts Options) (*Source, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	return &Source{opts: opts, log: opts.Logger}, nil
}

// Options returns the options in use, defaults filled in.
func (s *Source) Options() Options { return s.opts }

// Info names the source; it encodes itself, so it honours keyframe
// requests.
func (s *Source) Info() media.SourceInfo {
	return media.SourceInfo{Name: "capture " + s.opts.Device, ForcesKeyframes: true}
}
