package h264_test

import (
	"errors"
	"os"
	"testing"

	"github.com/camd-project/camd/media/h264"
	"github.com/camd-project/camd/media/h264/h264test"
)

func TestParseSPS(t *testing.T) {
	tests := []struct {
		name string
		nalu []byte
		want h264.SPSInfo
		str  string
	}{
		{
			name: "libx264 320x240",
			nalu: h264test.SPS320x240(),
			want: h264.SPSInfo{Width: 320, Height: 240, Profile: 100, Level: 13, FPS: 30},
			str:  "320x240 High 1.3 30fps",
		},
		{
			name: "no VUI",
			nalu: h264test.SPSNoVUI(),
			want: h264.SPSInfo{Width: 320, Height: 240, Profile: 66, Constrained: true, Level: 30},
			str:  "320x240 Constrained Baseline 3.0",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := h264.ParseSPS(tt.nalu)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			if got.String() != tt.str {
				t.Errorf("String() = %q, want %q", got.String(), tt.str)
			}
		})
	}
}

func TestParseSPSInvalid(t *testing.T) {
	for name, nalu := range map[string][]byte{
		"empty":     nil,
		"PPS":       h264test.PPS320x240(),
		"truncated": h264test.SPS320x240()[:6],
		"header":    {0x67},
		"too wide":  h264test.BaselineSPS(16*2000, 160),
		"too high":  h264test.BaselineSPS(160, 16*5000),
	} {
		t.Run(name, func(t *testing.T) {
			if info, err := h264.ParseSPS(nalu); !errors.Is(err, h264.ErrInvalidSPS) {
				t.Fatalf("got %+v, %v; want ErrInvalidSPS", info, err)
			}
		})
	}
}

// TestParseSPSFFmpeg reads the SPS of real streams, including sizes that
// need cropping (360 is not a multiple of 16) and other frame rates.
func TestParseSPSFFmpeg(t *testing.T) {
	dir := t.TempDir()
	for _, s := range []h264test.Stream{
		{Width: 640, Height: 360, Rate: 25, Frames: 2},
		{Width: 176, Height: 144, Rate: 100, Frames: 2},
		{Width: 1280, Height: 720, Rate: 15, Frames: 2},
	} {
		t.Run(s.Name(), func(t *testing.T) {
			data, err := os.ReadFile(h264test.Encode(t, dir, s))
			if err != nil {
				t.Fatal(err)
			}
			nalus := h264.NALUs(data)
			if len(nalus) == 0 {
				t.Fatal("no NAL units")
			}
			info, err := h264.ParseSPS(nalus[0])
			if err != nil {
				t.Fatal(err)
			}
			if info.Width != s.Width || info.Height != s.Height || info.FPS != float64(s.Rate) {
				t.Errorf("got %v, want %dx%d %dfps", info, s.Width, s.Height, s.Rate)
			}
		})
	}
}
