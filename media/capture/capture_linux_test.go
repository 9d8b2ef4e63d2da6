//go:build linux && cgo && !camd_nocapture

package capture

import (
	"context"
	"errors"
	"fmt"
	"image"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/mediadevices/pkg/driver"
	"github.com/pion/mediadevices/pkg/frame"
	"github.com/pion/mediadevices/pkg/io/video"
	"github.com/pion/mediadevices/pkg/prop"
	"go.uber.org/goleak"

	"github.com/camd-project/camd/media"
	"github.com/camd-project/camd/media/encoder"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type nopPub struct{}

func (nopPub) Publish(*media.Frame)    {}
func (nopPub) KeyframeRequested() bool { return false }
func (nopPub) TargetBitrate() int      { return 0 }

func runErr(t *testing.T, dev string) error {
	t.Helper()
	src, err := New(Options{Device: dev})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = src.Run(ctx, nopPub{})
	if err == nil || ctx.Err() != nil {
		t.Fatalf("Run(%s) = %v, want an error at once", dev, err)
	}
	return err
}

func TestRunMissingDevice(t *testing.T) {
	dev := filepath.Join(t.TempDir(), "video9")
	err := runErr(t, dev)
	if !errors.Is(err, ErrNoDevice) || err.Error() != "capture: open "+dev+": no such device" {
		t.Fatalf("Run = %q", err)
	}
}

func TestRunDefaultDeviceMissing(t *testing.T) {
	if _, err := os.Stat(DefaultDevice); err == nil {
		t.Skip(DefaultDevice + " exists on this host")
	}
	err := runErr(t, "")
	if err.Error() != "capture: open /dev/video0: no such device" {
		t.Fatalf("Run = %q", err)
	}
}

func TestRunNotACamera(t *testing.T) {
	err := runErr(t, "/dev/null")
	if errors.Is(err, ErrNoDevice) || !strings.Contains(err.Error(), "capture: open /dev/null: not a V4L2 video capture device") {
		t.Fatalf("Run = %q", err)
	}
}

func TestPickFormat(t *testing.T) {
	offer := func(w, h int, f frame.Format, fps float32) prop.Media {
		return prop.Media{Video: prop.Video{Width: w, Height: h, FrameFormat: f, FrameRate: fps}}
	}
	offers := []prop.Media{
		offer(1280, 720, frame.FormatMJPEG, 30),
		offer(1280, 720, frame.FormatYUYV, 10),
		offer(640, 480, frame.FormatMJPEG, 30),
		offer(640, 480, frame.FormatYUYV, 30),
		offer(640, 480, frame.FormatYUYV, 15),
		offer(640, 480, frame.FormatZ16, 30),
		offer(320, 240, frame.FormatRGBA, 30),
	}
	tests := []struct {
		w, h, fps int
		want      prop.Media
		err       string
	}{
		{640, 480, 30, offer(640, 480, frame.FormatYUYV, 30), ""},
		{640, 480, 15, offer(640, 480, frame.FormatYUYV, 15), ""},
		// Raw YUYV only at 10 fps: MJPEG gives the frame rate.
		{1280, 720, 30, offer(1280, 720, frame.FormatMJPEG, 30), ""},
		{1280, 720, 10, offer(1280, 720, frame.FormatYUYV, 10), ""},
		{320, 240, 30, prop.Media{}, "no 320x240 in a supported format (offers 1280x720 MJPEG, 1280x720 YUYV, 640x480 MJPEG, 640x480 YUYV, 640x480 Z16, 320x240 RGBA)"},
	}
	for _, tt := range tests {
		got, err := pickFormat(offers, encoder.H264Options{Width: tt.w, Height: tt.h, FPS: tt.fps})
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("%dx%d@%d: err = %v, want %q", tt.w, tt.h, tt.fps, err, tt.err)
			}
			continue
		}
		if err != nil || got.Video != tt.want.Video {
			t.Errorf("%dx%d@%d: got %+v, %v; want %+v", tt.w, tt.h, tt.fps, got.Video, err, tt.want.Video)
		}
	}
	// A camera that lists no frame rate is taken at its word.
	got, err := pickFormat([]prop.Media{offer(640, 480, frame.FormatNV12, 0)}, encoder.H264Options{Width: 640, Height: 480, FPS: 30})
	if err != nil || got.FrameFormat != frame.FormatNV12 {
		t.Errorf("no frame rate listed: %+v, %v", got.Video, err)
	}
}

// fakeCamera is a mediadevices camera adapter that delivers a moving
// I420 picture every 10 ms until closed, as the V4L2 driver would.
type fakeCamera struct {
	mu     sync.Mutex
	closed chan struct{}
	opened bool
	closes int
}

func (c *fakeCamera) Open() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.opened, c.closed = true, make(chan struct{})
	return nil
}

func (c *fakeCamera) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed != nil {
		close(c.closed)
		c.closed = nil
	}
	c.closes++
	return nil
}

func (c *fakeCamera) Properties() []prop.Media {
	return []prop.Media{
		{Video: prop.Video{Width: 320, Height: 240, FrameFormat: frame.FormatMJPEG, FrameRate: 30}},
		{Video: prop.Video{Width: 320, Height: 240, FrameFormat: frame.FormatI420, FrameRate: 30}},
	}
}

func (c *fakeCamera) VideoRecord(p prop.Media) (video.Reader, error) {
	if p.FrameFormat != frame.FormatI420 {
		return nil, errors.New("fake camera: asked for " + string(p.FrameFormat))
	}
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	n := 0
	return video.ReaderFunc(func() (image.Image, func(), error) {
		select {
		case <-closed:
			return nil, func() {}, io.EOF
		case <-time.After(10 * time.Millisecond):
		}
		img := image.NewYCbCr(image.Rect(0, 0, p.Width, p.Height), image.YCbCrSubsampleRatio420)
		for i := range img.Y {
			img.Y[i] = uint8(16 + (i+3*n)%200)
		}
		for i := range img.Cb {
			img.Cb[i], img.Cr[i] = 128, 128
		}
		n++
		return img, func() {}, nil
	}), nil
}

// recordPub records what a source publishes. Once enough holds for the
// video and audio frames published, every Publish calls done.
type recordPub struct {
	enough func(video, audio int) bool
	done   func()

	mu           sync.Mutex
	frames       []*media.Frame
	video, audio int
}

func (p *recordPub) Publish(f *media.Frame) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.frames = append(p.frames, f)
	if f.Kind == media.Audio {
		p.audio++
	} else {
		p.video++
	}
	if p.enough != nil && p.enough(p.video, p.audio) {
		p.done()
	}
}
func (p *recordPub) KeyframeRequested() bool { return false }
func (p *recordPub) TargetBitrate() int      { return 0 }

// split returns the frames published so far by kind.
func (p *recordPub) split() (video, audio []*media.Frame) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, f := range p.frames {
		if f.Kind == media.Audio {
			audio = append(audio, f)
		} else {
			video = append(video, f)
		}
	}
	return video, audio
}

// registerFakeCamera registers a fake camera in mediadevices' driver
// list under a device node name of its own and returns that node's path.
func registerFakeCamera(t *testing.T) (string, *fakeCamera) {
	t.Helper()
	node := "video-camd-" + strings.ReplaceAll(t.Name(), "/", "-")
	dev := filepath.Join(t.TempDir(), node)
	if err := os.WriteFile(dev, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cam := &fakeCamera{}
	m := driver.GetManager()
	label := "fake;" + node
	if err := m.Register(cam, driver.Info{Label: label, DeviceType: driver.Camera}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, d := range m.Query(driver.FilterDeviceType(driver.Camera)) {
			if d.Info().Label == label {
				m.Delete(d.ID())
			}
		}
	})
	return dev, cam
}

// noMic is an openMic that finds none.
func noMic(string) (*mic, error) {
	return nil, fmt.Errorf("capture: %w among the ALSA capture devices [null]", errNoMicrophone)
}

// runUntil runs src until enough holds for the video and audio frames it
// published, and returns them by kind. It waits for frames, not for time:
// on a loaded machine (or under -race) it only takes longer.
func runUntil(t *testing.T, src *Source, enough func(video, audio int) bool) (video, audio []*media.Frame) {
	t.Helper()
	ctx, cancel := context.WithTimeoutCause(context.Background(), 30*time.Second, errTooLong)
	defer cancel()
	pub := &recordPub{enough: enough, done: cancel}
	err := src.Run(ctx, pub)
	video, audio = pub.split()
	if context.Cause(ctx) == errTooLong {
		t.Fatalf("%d video frames and %d audio packets after %v: not enough", len(video), len(audio), errTooLong)
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want the context's error", err)
	}
	return video, audio
}

var errTooLong = errors.New("30 s")

// videoFrames is an enough for runUntil: n video frames.
func videoFrames(n int) func(video, audio int) bool {
	return func(video, _ int) bool { return video >= n }
}

// checkVideo checks that video holds at least want frames, starting with
// a keyframe, PTS growing.
func checkVideo(t *testing.T, video []*media.Frame, want int) {
	t.Helper()
	if len(video) < want {
		t.Fatalf("%d video frames from a 100 fps camera, want %d or more", len(video), want)
	}
	if !video[0].Key {
		t.Error("first frame is not a keyframe")
	}
	for i := 1; i < len(video); i++ {
		if video[i].PTS <= video[i-1].PTS {
			t.Fatalf("frame %d: PTS %v after %v", i, video[i].PTS, video[i-1].PTS)
		}
	}
}

// TestRunStreamsFakeCamera drives Run end to end through mediadevices'
// driver list with a fake camera registered under a device node name.
func TestRunStreamsFakeCamera(t *testing.T) {
	dev, cam := registerFakeCamera(t)
	src, err := New(Options{Device: dev, Video: encoder.H264Options{Width: 320, Height: 240}})
	if err != nil {
		t.Fatal(err)
	}
	src.openMic = noMic
	video, audio := runUntil(t, src, videoFrames(20))
	checkVideo(t, video, 20)
	if len(audio) != 0 {
		t.Errorf("%d audio packets without a microphone", len(audio))
	}
	cam.mu.Lock()
	defer cam.mu.Unlock()
	if !cam.opened || cam.closes != 1 {
		t.Errorf("camera opened=%v, closed %d times; want opened and closed once", cam.opened, cam.closes)
	}
}

// TestRawPicturesReachTheHook checks that the camera's pictures are
// offered before encoding, for snapshots and motion detection.
func TestRawPicturesReachTheHook(t *testing.T) {
	dev, _ := registerFakeCamera(t)
	src, err := New(Options{Device: dev, Video: encoder.H264Options{Width: 320, Height: 240}})
	if err != nil {
		t.Fatal(err)
	}
	src.openMic = noMic
	var n atomic.Int32
	var size atomic.Value
	src.SetRaw(func(pic *image.YCbCr, at time.Time) {
		n.Add(1)
		size.Store(pic.Rect.Size())
		if at.IsZero() {
			t.Error("raw picture without a capture time")
		}
	})
	video, _ := runUntil(t, src, videoFrames(20))
	if got := int(n.Load()); got < len(video) || got == 0 {
		t.Fatalf("%d raw pictures for %d encoded frames", got, len(video))
	}
	if s := size.Load().(image.Point); s.X != 320 || s.Y != 240 {
		t.Fatalf("raw picture %v", s)
	}
	src.SetRaw(nil)
}
