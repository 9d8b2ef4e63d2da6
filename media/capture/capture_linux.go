//go:build linux && cgo && !camd_nocapture

package capture

import (
	"context"
	"errors"
	"fmt"
	"image"
	"io/fs"
	"log/slog"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pion/mediadevices/pkg/driver"
	"github.com/pion/mediadevices/pkg/driver/camera"
	"github.com/pion/mediadevices/pkg/frame"
	"github.com/pion/mediadevices/pkg/io/video"
	"github.com/pion/mediadevices/pkg/prop"

	"github.com/camd-project/camd/media"
	"github.com/camd-project/camd/media/encoder"
)

// errNotCamera means the path exists but mediadevices' V4L2 driver does
// not know it as a camera.
var errNotCamera = errors.New("not a V4L2 video capture device")

// discoverMu serializes camera.Initialize, which rebuilds mediadevices'
// process-wide driver list.
var discoverMu sync.Mutex

// Run opens the camera and, unless NoAudio, the microphone, and encodes
// and publishes what they deliver until ctx ends (it returns ctx.Err()) or
// either device fails. A video frame's PTS is the time since the start of
// the run at which it was read; an audio packet's comes from the sample
// count (see audioStage). Without a microphone Run streams video only.
func (s *Source) Run(ctx context.Context, pub media.Publisher) error {
	dev := s.opts.Device
	d, err := openCamera(dev)
	if err != nil {
		return err
	}
	var closeOnce sync.Once
	closeCam := func() {
		closeOnce.Do(func() {
			if err := d.Close(); err != nil {
				s.log.Warn("capture: close camera", "device", dev, "err", err)
			}
		})
	}
	defer closeCam()
	r, fps, err := s.startCamera(d)
	if err != nil {
		return err
	}
	opts := s.opts.Video
	if fps > 0 {
		// Budget the rate control for what the camera really delivers.
		opts.FPS = min(max(int(math.Round(float64(fps))), 1), encoder.MaxFPS)
	}
	venc, err := encoder.NewH264(opts)
	if err != nil {
		return fmt.Errorf("capture: %w", err)
	}
	defer venc.Close()

	var (
		m    *mic
		aenc *encoder.Opus
	)
	if !s.opts.NoAudio {
		if m = s.startMicrophone(); m != nil {
			defer m.close()
			if aenc, err = encoder.NewOpus(1, 0); err != nil {
				return fmt.Errorf("capture: %w", err)
			}
			defer aenc.Close()
		}
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		audioErr error
	)
	// Closing the camera is what interrupts a blocked read.
	wg.Go(func() {
		<-ctx.Done()
		closeCam()
	})
	start := time.Now()
	if m != nil {
		wg.Go(func() {
			if err := s.runAudio(ctx, pub, m, aenc, start); err != nil && ctx.Err() == nil {
				audioErr = err
				cancel()
			}
		})
	}
	err = s.runVideo(ctx, pub, r, venc, start)
	cancel()
	wg.Wait()
	st := venc.Stats()
	s.log.Debug("capture: stopped", "device", dev, "frames", st.Frames, "keyframes", st.Keyframes,
		"skipped", st.Skipped, "bytes", st.Bytes)
	if audioErr != nil {
		return audioErr
	}
	return err
}

// startCamera starts the opened camera at the configured size and returns
// its I420 reader and the frame rate it was started at (0: unknown).
func (s *Source) startCamera(d driver.Driver) (video.Reader, float32, error) {
	dev := s.opts.Device
	p, err := pickFormat(d.Properties(), s.opts.Video)
	if err != nil {
		return nil, 0, fmt.Errorf("capture: %s: %w", dev, err)
	}
	rec, ok := d.(driver.VideoRecorder)
	if !ok {
		return nil, 0, fmt.Errorf("capture: %s: %w", dev, errNotCamera)
	}
	r, err := rec.VideoRecord(p)
	if err != nil {
		return nil, 0, fmt.Errorf("capture: start %s as %dx%d %s: %w", dev, p.Width, p.Height, p.FrameFormat, err)
	}
	s.log.Info("capture: streaming", "device", dev, "width", p.Width, "height", p.Height,
		"format", p.FrameFormat, "fps", p.FrameRate)
	return video.ToI420(r), p.FrameRate, nil
}

// runVideo encodes and publishes every picture the camera delivers until
// ctx ends (the camera is closed then, which ends a blocked read) or the
// camera fails.
func (s *Source) runVideo(ctx context.Context, pub media.Publisher, r video.Reader, enc *encoder.H264, start time.Time) error {
	dev := s.opts.Device
	last := time.Duration(-1)
	for {
		img, release, err := r.Read()
		if ctx.Err() != nil {
			if err == nil {
				release()
			}
			return ctx.Err()
		}
		if err != nil {
			return fmt.Errorf("capture: read %s: %w", dev, err)
		}
		now := time.Now()
		pts := max(now.Sub(start), last+time.Microsecond)
		last = pts
		pic, ok := img.(*image.YCbCr)
		if !ok {
			release()
			return fmt.Errorf("capture: %s delivered %T, want I420", dev, img)
		}
		s.OfferRaw(pic, now)
		err = enc.Encode(pub, pic, pts, now)
		release()
		if err != nil {
			return fmt.Errorf("capture: %s: %w", dev, err)
		}
	}
}

// startMicrophone starts the microphone, or returns nil if there is none
// that works: a camera without one is common, so Run goes on with video
// only. The first time it warns; while the microphone stays missing,
// restarts log it at debug level.
func (s *Source) startMicrophone() *mic {
	m, err := s.openMic(s.opts.Microphone)
	if err != nil {
		level := slog.LevelWarn
		if s.micMissing.Swap(true) {
			level = slog.LevelDebug
		}
		s.log.Log(context.Background(), level, "capture: no microphone; streaming video only", "err", err)
		return nil
	}
	s.micMissing.Store(false)
	s.log.Info("capture: recording", "microphone", m.name)
	return m
}

// openCamera finds dev in mediadevices' camera list and opens it.
func openCamera(dev string) (driver.Driver, error) {
	node, err := filepath.EvalSymlinks(dev)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("capture: open %s: %w", dev, ErrNoDevice)
	}
	if err != nil {
		return nil, fmt.Errorf("capture: open %s: %w", dev, err)
	}
	d := findCamera(node)
	if d == nil {
		// Plugged in after the process started: look again.
		discoverMu.Lock()
		camera.Initialize()
		discoverMu.Unlock()
		d = findCamera(node)
	}
	if d == nil {
		return nil, fmt.Errorf("capture: open %s: %w", dev, errNotCamera)
	}
	if err := d.Open(); err != nil {
		return nil, fmt.Errorf("capture: open %s: %w", dev, err)
	}
	return d, nil
}

// findCamera returns the registered camera whose device node is node
// (/dev/videoN). mediadevices labels cameras "name;videoN".
func findCamera(node string) driver.Driver {
	base := filepath.Base(node)
	for _, d := range driver.GetManager().Query(driver.FilterDeviceType(driver.Camera)) {
		label := d.Info().Label
		if i := strings.LastIndex(label, camera.LabelSeparator); i >= 0 && label[i+1:] == base {
			return d
		}
	}
	return nil
}

// formats are the camera formats mediadevices converts to I420, cheapest
// first: MJPEG needs a JPEG decode per frame.
var formats = []frame.Format{
	frame.FormatI420, frame.FormatNV12, frame.FormatNV21,
	frame.FormatYUYV, frame.FormatYUY2, frame.FormatUYVY, frame.FormatMJPEG,
}

// pickFormat chooses among what the camera offers at the wanted size: the
// frame rate nearest FPS (a camera that lists none is taken at its word),
// then the cheapest format.
func pickFormat(offers []prop.Media, o encoder.H264Options) (prop.Media, error) {
	best, bestFormat, bestRate := prop.Media{}, len(formats), math.Inf(1)
	for _, p := range offers {
		if p.Width != o.Width || p.Height != o.Height {
			continue
		}
		f := slices.Index(formats, p.FrameFormat)
		if f < 0 {
			continue
		}
		rate := 0.0
		if p.FrameRate > 0 {
			rate = math.Abs(float64(p.FrameRate) - float64(o.FPS))
		}
		if rate < bestRate || (rate == bestRate && f < bestFormat) {
			best, bestFormat, bestRate = p, f, rate
		}
	}
	if bestFormat == len(formats) {
		return prop.Media{}, fmt.Errorf("no %dx%d in a supported format (offers %s)", o.Width, o.Height, describe(offers))
	}
	return best, nil
}

// describe lists a camera's offers for an error message.
func describe(offers []prop.Media) string {
	seen := map[string]bool{}
	var out []string
	for _, p := range offers {
		s := fmt.Sprintf("%dx%d %s", p.Width, p.Height, p.FrameFormat)
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return "nothing"
	}
	if len(out) > 12 {
		out = append(out[:12], "...")
	}
	return strings.Join(out, ", ")
}
