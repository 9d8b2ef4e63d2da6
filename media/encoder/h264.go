//go:build cgo

package encoder

import (
	"errors"
	"fmt"
	"image"
	"log/slog"
	"sync"
	"time"

	"github.com/pion/mediadevices/pkg/codec"
	"github.com/pion/mediadevices/pkg/codec/openh264"
	"github.com/pion/mediadevices/pkg/frame"
	"github.com/pion/mediadevices/pkg/io/video"
	"github.com/pion/mediadevices/pkg/prop"

	"github.com/camd-project/camd/media"
	"github.com/camd-project/camd/media/h264"
)

// H264 drives one openh264 encoder for a media source: it applies the
// publisher's keyframe requests and target bitrate before each picture,
// makes periodic IDRs, checks what came out and publishes it. It is not
// safe for concurrent use: one goroutine feeds it pictures.
type H264 struct {
	opts H264Options
	log  *slog.Logger

	enc     codec.ReadCloser
	keys    codec.KeyFrameController
	rates   codec.BitRateController
	pic     *image.YCbCr
	bitrate int

	started    bool // an IDR was published
	pendingKey bool // an IDR was forced but has not come out yet
	lastKey    time.Duration
	params     h264.ParamSets

	stats H264Stats

	closeOnce sync.Once
	closeErr  error
}

var errNoPicture = errors.New("encoder: no picture")

// NewH264 starts an openh264 encoder configured so that its output tracks
// the target bitrate (see the package documentation).
func NewH264(opts H264Options) (*H264, error) {
	opts = opts.withDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	e := &H264{opts: opts, log: opts.Logger, bitrate: opts.Bitrate}

	p, err := openh264.NewParams()
	if err != nil {
		return nil, fmt.Errorf("encoder: openh264 params: %w", err)
	}
	p.BitRate = opts.Bitrate // bits per second
	p.UsageType = openh264.CameraVideoRealTime
	p.RCMode = openh264.RCBitrateMode
	// Frame skipping is what keeps RC_BITRATE_MODE on target when QP alone
	// cannot; a skipped picture yields no output and is not published.
	p.EnableFrameSkip = true
	// IDRs are forced from Go (first frame, requests, KeyframeInterval);
	// 0 turns openh264's own intra period off.
	p.IntraPeriod = 0
	// One slice, one thread: the access unit is one NAL (plus SPS/PPS on
	// IDRs), and more threads bought nothing on the pattern (measured).
	p.MultipleThreadIdc = 1
	p.SliceMode = openh264.SMSingleSlice
	p.SliceNum = 1

	// openh264 reads the picture through a video.Reader: hand it the one
	// that Encode was called with.
	r := video.ReaderFunc(func() (image.Image, func(), error) {
		if e.pic == nil {
			return nil, func() {}, errNoPicture
		}
		return e.pic, func() {}, nil
	})
	enc, err := p.BuildVideoEncoder(r, prop.Media{
		Video: prop.Video{
			Width:       opts.Width,
			Height:      opts.Height,
			FrameRate:   float32(opts.FPS),
			FrameFormat: frame.FormatI420,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("encoder: openh264 %dx%d: %w", opts.Width, opts.Height, err)
	}
	e.enc = enc
	e.keys, _ = enc.Controller().(codec.KeyFrameController)
	e.rates, _ = enc.Controller().(codec.BitRateController)
	if e.keys == nil || e.rates == nil {
		enc.Close()
		return nil, errors.New("encoder: openh264 cannot force keyframes or change bitrate")
	}
	return e, nil
}

// Encode encodes one I420 picture and publishes the access unit to pub.
// Before encoding it takes pub's keyframe request and target bitrate. pts
// is the picture's presentation time since the start of the stream and
// captured the wall-clock time it was captured. A picture that the rate
// control skips publishes nothing.
func (e *H264) Encode(pub media.Publisher, pic *image.YCbCr, pts time.Duration, captured time.Time) error {
	if b := pic.Bounds(); b.Dx() != e.opts.Width || b.Dy() != e.opts.Height {
		return fmt.Errorf("encoder: picture is %dx%d, encoder is %dx%d", b.Dx(), b.Dy(), e.opts.Width, e.opts.Height)
	}
	if pic.SubsampleRatio != image.YCbCrSubsampleRatio420 {
		return fmt.Errorf("encoder: picture is %v, want 4:2:0", pic.SubsampleRatio)
	}
	e.applyBitrate(pub.TargetBitrate())

	requested := pub.KeyframeRequested() // always take it: it clears
	periodic := e.opts.KeyframeInterval > 0 && e.started && pts-e.lastKey >= e.opts.KeyframeInterval
	if requested {
		e.stats.Requested++
	}
	if !e.started || requested || periodic {
		e.pendingKey = true
	}
	if e.pendingKey {
		// Forced again on every picture until an IDR comes out: the
		// rate control may skip the picture it was forced on.
		if err := e.keys.ForceKeyFrame(); err != nil {
			return fmt.Errorf("encoder: force keyframe: %w", err)
		}
	}

	e.pic = pic
	au, release, err := e.enc.Read()
	e.pic = nil
	if err != nil {
		return fmt.Errorf("encoder: openh264: %w", err)
	}
	release()
	e.stats.Pictures++
	if len(au) == 0 {
		e.stats.Skipped++
		return nil
	}

	// Every IDR is made decodable alone, whatever openh264's SPS/PPS
	// strategy: the parameter sets it sent last go in front of one that
	// lacks them.
	unit := e.params.Complete(h264.Describe(au))
	au, key := unit.Data, unit.Key
	if key {
		e.started, e.pendingKey, e.lastKey = true, false, pts
		e.stats.Keyframes++
	} else if !e.started {
		// Nothing can be decoded before the first IDR.
		e.stats.Skipped++
		return nil
	}
	e.stats.Frames++
	e.stats.Bytes += uint64(len(au))
	pub.Publish(&media.Frame{Kind: media.Video, Data: au, PTS: pts, Captured: captured, Key: key})
	return nil
}

// applyBitrate sets the encoder's target to bps clamped to the options'
// bounds; 0 means the configured Bitrate.
func (e *H264) applyBitrate(bps int) {
	if bps <= 0 {
		bps = e.opts.Bitrate
	}
	bps = min(max(bps, e.opts.MinBitrate), e.opts.MaxBitrate)
	if bps == e.bitrate {
		return
	}
	// SetBitRate cannot fail for openh264 (it returns nil); the new target
	// applies from the next picture on.
	_ = e.rates.SetBitRate(bps)
	e.log.Debug("encoder: target bitrate changed", "from", e.bitrate, "to", bps)
	e.bitrate = bps
}

// Bitrate returns the current target bitrate in bits per second.
func (e *H264) Bitrate() int { return e.bitrate }

// Stats returns the encoder's counters.
func (e *H264) Stats() H264Stats { return e.stats }

// Close frees the encoder. It is safe to call twice.
func (e *H264) Close() error {
	e.closeOnce.Do(func() {
		if err := e.enc.Close(); err != nil {
			e.closeErr = fmt.Errorf("encoder: close openh264: %w", err)
		}
	})
	return e.closeErr
}
