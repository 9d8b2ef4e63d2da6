//go:build cgo

package encoder

import (
	"image"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/camd-project/camd/media"
	"github.com/camd-project/camd/media/h264"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type pub struct {
	frames  []*media.Frame
	key     bool
	bitrate int
}

func (p *pub) Publish(f *media.Frame) { p.frames = append(p.frames, f) }
func (p *pub) KeyframeRequested() bool {
	k := p.key
	p.key = false
	return k
}
func (p *pub) TargetBitrate() int { return p.bitrate }

// picture draws a moving gradient with a box: enough for P frames.
func picture(w, h, n int) *image.YCbCr {
	img := image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio420)
	for y := range h {
		for x := range w {
			img.Y[y*img.YStride+x] = uint8(16 + (x+y+3*n)%200)
		}
	}
	for i := range img.Cb {
		img.Cb[i], img.Cr[i] = 128, 128
	}
	for y := 10; y < 40; y++ {
		for x := 10 + 2*n; x < 40+2*n && x < w; x++ {
			img.Y[y*img.YStride+x] = 235
		}
	}
	return img
}

func TestH264KeyframesAndBitrate(t *testing.T) {
	const w, h = 160, 120
	enc, err := NewH264(H264Options{Width: w, Height: h, FPS: 30, Bitrate: 500_000, MinBitrate: 100_000, MaxBitrate: 1_000_000, KeyframeInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	p := &pub{}
	encode := func(n int) *media.Frame {
		t.Helper()
		before := len(p.frames)
		if err := enc.Encode(p, picture(w, h, n), time.Duration(n)*time.Second/30, time.Now()); err != nil {
			t.Fatal(err)
		}
		if len(p.frames) == before {
			t.Fatalf("picture %d was not published", n)
		}
		return p.frames[len(p.frames)-1]
	}

	f := encode(0)
	if au := h264.Describe(f.Data); !f.Key || !au.HasSPS || !au.HasPPS || !au.Key {
		t.Fatalf("first frame: Key=%v, holds %+v", f.Key, au)
	}
	for n := 1; n < 5; n++ {
		if f := encode(n); f.Key || h264.Describe(f.Data).Key {
			t.Fatalf("frame %d is a keyframe without a request", n)
		}
	}
	p.key = true
	if f := encode(5); !f.Key || !h264.Describe(f.Data).Key {
		t.Fatal("requested keyframe did not come out on the next frame")
	}
	if st := enc.Stats(); st.Requested != 1 || st.Keyframes != 2 || st.Frames != 6 {
		t.Errorf("stats %+v", st)
	}

	for _, tt := range []struct{ target, want int }{
		{0, 500_000}, {10, 100_000}, {300_000, 300_000}, {1e9, 1_000_000}, {0, 500_000},
	} {
		p.bitrate = tt.target
		encode(6)
		if got := enc.Bitrate(); got != tt.want {
			t.Errorf("target %d: Bitrate() = %d, want %d", tt.target, got, tt.want)
		}
	}
}

func TestH264RejectsWrongPictures(t *testing.T) {
	enc, err := NewH264(H264Options{Width: 160, Height: 120})
	if err != nil {
		t.Fatal(err)
	}
	if err := enc.Encode(&pub{}, picture(320, 240, 0), 0, time.Now()); err == nil || !strings.Contains(err.Error(), "320x240") {
		t.Errorf("wrong size: %v", err)
	}
	img444 := image.NewYCbCr(image.Rect(0, 0, 160, 120), image.YCbCrSubsampleRatio444)
	if err := enc.Encode(&pub{}, img444, 0, time.Now()); err == nil {
		t.Error("4:4:4 picture accepted")
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestH264OptionsValidate(t *testing.T) {
	tests := []struct {
		opts H264Options
		want string
	}{
		{H264Options{Width: 640, Height: 480}, ""},
		{H264Options{}, "encoder: Width 0 must be even and within 16..3840"},
		{H264Options{Width: 640, Height: 481}, "encoder: Height 481"},
		{H264Options{Width: 640, Height: 480, FPS: 61}, "encoder: FPS 61 must be within 1..60"},
		{H264Options{Width: 640, Height: 480, Bitrate: 100_000}, ""}, // MinBitrate follows
		{H264Options{Width: 640, Height: 480, Bitrate: 30_000_000}, "encoder: Bitrate 30000000"},
	}
	for _, tt := range tests {
		err := tt.opts.Validate()
		if (err == nil) != (tt.want == "") || (err != nil && !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%+v: Validate = %v, want %q", tt.opts, err, tt.want)
		}
		if err != nil {
			if _, err := NewH264(tt.opts); err == nil {
				t.Errorf("%+v: NewH264 accepted invalid options", tt.opts)
			}
		}
	}
	if err := (H264Options{Width: 1}).ValidateAs("capture"); err == nil || !strings.HasPrefix(err.Error(), "capture: Width 1") {
		t.Errorf("ValidateAs = %v", err)
	}
}

func TestSourceDefaults(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	o, l := SourceDefaults(H264Options{Height: 240}, log)
	if o.Width != DefaultWidth || o.Height != 240 || o.FPS != DefaultFPS || o.Logger != log || l != log {
		t.Errorf("SourceDefaults = %+v, %p", o, l)
	}
	if err := o.Validate(); err != nil {
		t.Errorf("Validate = %v", err)
	}
	if o, l := SourceDefaults(H264Options{}, nil); l == nil || o.Logger != l {
		t.Errorf("SourceDefaults(nil) gave the logger %p and the encoder %p", l, o.Logger)
	}
	own := slog.New(slog.DiscardHandler)
	if o, l := SourceDefaults(H264Options{Logger: own}, log); o.Logger != own || l != log {
		t.Error("SourceDefaults replaced the encoder's own logger")
	}
}

func TestOpus(t *testing.T) {
	enc, err := NewOpus(1, 0)
	if err != nil {
		t.Fatal(err)
	}
	pcm := make([]int16, OpusFrame)
	for i := range pcm {
		pcm[i] = int16(8000 * math.Sin(2*math.Pi*440*float64(i)/OpusSampleRate))
	}
	for i := range 5 {
		pkt, err := enc.Encode(pcm)
		if err != nil {
			t.Fatal(err)
		}
		if len(pkt) < 2 || len(pkt) > 400 || cap(pkt) > 2*len(pkt)+64 {
			t.Fatalf("packet %d: %d bytes (cap %d)", i, len(pkt), cap(pkt))
		}
		// One mono frame per packet.
		if pkt[0]&0x07 != 0 {
			t.Fatalf("packet %d: TOC %#x says stereo or several frames", i, pkt[0])
		}
	}
	if _, err := enc.Encode(pcm[:100]); err == nil {
		t.Error("short block accepted")
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := NewOpus(3, 0); err == nil {
		t.Error("3 channels accepted")
	}
}
