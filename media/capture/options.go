package capture

import (
	"cmp"
	"errors"
	"log/slog"

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

// DefaultDevice is the default V4L2 device node.
const DefaultDevice = "/dev/video0"

// Options configure a V4L2 camera source. The zero value means defaults.
type Options struct {
	// Device is the V4L2 device node (default /dev/video0); a symlink
	// such as /dev/v4l/by-id/... works too.
	Device string
	// Video is the size of the capture (default 640x480): the camera must
	// offer it in a format mediadevices can convert to I420 (I420, NV12,
	// NV21, YUYV, UYVY or MJPEG). Its FPS asks the camera for a frame rate
	// and budgets the encoder for it (default 30, at most 60); the rest
	// configures the encoder's bitrate and keyframes (defaults in package
	// encoder). Video.Logger defaults to Logger.
	Video encoder.H264Options
	// Logger receives the source's messages (nil discards them).
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	o.Device = cmp.Or(o.Device, DefaultDevice)
	o.Logger = cmp.Or(o.Logger, slog.New(slog.DiscardHandler))
	o.Video = o.Video.WithDefaults(o.Logger)
	return o
}

// Validate reports the first option out of range, naming the field, its
// value and the allowed range. Zero values are replaced by their defaults
// first. It does not look for the device: Run does.
func (o Options) Validate() error {
	return o.withDefaults().Video.ValidateAs("capture")
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
