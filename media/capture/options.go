package capture

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"unicode"

	"github.com/camd-project/camd/media"
	"github.com/camd-project/camd/media/encoder"
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

// maxMicrophone is the longest Microphone: ALSA device names and
// miniaudio's device IDs hold 255 bytes.
const maxMicrophone = 255

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
	// NoAudio leaves the microphone out. By default Run records one
	// alongside the camera, or streams video only if there is none.
	NoAudio bool
	// G711 also carries the sound as G.711 µ-law on each audio frame
	// (media.Frame.G711), for RTSP clients without Opus; off, nothing is
	// encoded for it.
	G711 bool
	// Mic, when set, receives each block of the microphone before it is
	// encoded, and may change it (media.MicFunc).
	Mic media.MicFunc
	// Microphone picks the ALSA capture device: the first whose name or
	// ID contains it, ignoring case ("USB", "C920", "hw:1"); failing
	// that, it is opened as an ALSA PCM name ("plughw:CARD=C920,DEV=0",
	// or one defined in asound.conf). Empty means ALSA's default device,
	// then each sound card in turn. At most 255 bytes, no control
	// characters.
	Microphone string
	// Logger receives the source's messages (nil discards them).
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	o.Device = cmp.Or(o.Device, DefaultDevice)
	o.Video, o.Logger = encoder.SourceDefaults(o.Video, o.Logger)
	return o
}

// Validate reports the first option out of range, naming the field, its
// value and the allowed range. Zero values are replaced by their defaults
// first. It does not look for the camera or the microphone: Run does.
func (o Options) Validate() error {
	o = o.withDefaults()
	if err := o.Video.ValidateAs("capture"); err != nil {
		return err
	}
	if len(o.Microphone) > maxMicrophone || strings.ContainsFunc(o.Microphone, unicode.IsControl) {
		return fmt.Errorf("capture: Microphone %q must be at most %d bytes without control characters", o.Microphone, maxMicrophone)
	}
	return nil
}

// Source captures a V4L2 camera and encodes it to H.264 with openh264,
// and the microphone, if there is one, to Opus. Its methods are safe to
// call from several goroutines.
type Source struct {
	opts Options
	log  *slog.Logger
	mute atomic.Bool
	// RawHook offers each picture before it is encoded (snapshots,
	// motion detection).
	media.RawHook

	// openMic starts the microphone that Options.Microphone names (ALSA;
	// tests put a fake in its place).
	openMic func(want string) (*mic, error)
	// micMissing is set once a missing microphone has been reported, so
	// that restarts do not repeat the warning.
	micMissing atomic.Bool
}

var _ media.Source = (*Source)(nil)

// New checks opts and returns a camera source. The camera and the
// microphone are opened by Run, so devices plugged in later are found
// when the supervisor restarts it.
func New(opts Options) (*Source, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	s := &Source{opts: opts, log: opts.Logger}
	s.openMic = s.openALSA
	return s, nil
}

// Options returns the options in use, defaults filled in.
func (s *Source) Options() Options { return s.opts }

// Info names the source; it encodes itself, so it honours keyframe
// requests.
func (s *Source) Info() media.SourceInfo {
	// Its audio is the microphone's PCM: Opus and G.711 of it.
	return media.SourceInfo{Name: "capture " + s.opts.Device, ForcesKeyframes: true, Audio: !s.opts.NoAudio, G711: !s.opts.NoAudio && s.opts.G711}
}

// SetMute replaces the microphone's sound by silence (still sent as Opus
// packets, so the audio track keeps its timing) until called with false.
// It applies to the running Run and later ones.
func (s *Source) SetMute(mute bool) { s.mute.Store(mute) }
