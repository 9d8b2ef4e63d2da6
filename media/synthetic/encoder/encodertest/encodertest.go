// Package encodertest checks the video options of the sources that encode
// with package encoder (synthetic, capture): their defaults and the errors
// that name a field, its value and the allowed range.
package encodertest

import (
	"log/slog"
	"testing"
	"time"

	"github.com/camd-project/camd/media/synthetic/encoder"
)

// CheckValidate calls check with valid and out-of-range video options. It
// wants nil for the valid ones and for the others an error "pkg: " followed
// by the field, its value and the allowed range.
func CheckValidate(t *testing.T, pkg string, check func(encoder.H264Options) error) {
	t.Helper()
	tests := []struct {
		name string
		opts encoder.H264Options
		want string // the error after "pkg: "; "" for valid
	}{
		{"zero value", encoder.H264Options{}, ""},
		{"720p", encoder.H264Options{Width: 1280, Height: 720, FPS: 15, Bitrate: 1_000_000}, ""},
		{"odd width", encoder.H264Options{Width: 641}, "Width 641 must be even and within 16..3840"},
		{"negative height", encoder.H264Options{Height: -2}, "Height -2 must be even and within 16..2160"},
		{"huge height", encoder.H264Options{Height: 4000}, "Height 4000 must be even and within 16..2160"},
		{"fps", encoder.H264Options{FPS: 120}, "FPS 120 must be within 1..60"},
		{"bitrate", encoder.H264Options{Bitrate: 10}, "Bitrate 10 must be within 50000..20000000 bits per second"},
		{"min above bitrate", encoder.H264Options{Bitrate: 1_000_000, MinBitrate: 2_000_000}, "MinBitrate 2000000 must be within 50000..Bitrate (1000000)"},
		{"max below bitrate", encoder.H264Options{Bitrate: 1_000_000, MaxBitrate: 500_000}, "MaxBitrate 500000 must be within Bitrate (1000000)..20000000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := check(tt.opts)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("%+v: %v, want nil", tt.opts, err)
				}
				return
			}
			if want := pkg + ": " + tt.want; err == nil || err.Error() != want {
				t.Fatalf("%+v: %v, want %q", tt.opts, err, want)
			}
		})
	}
}

// CheckDefaults checks that v, the video options of a source built with
// zero ones, hold the defaults: 640x480 at 30 fps and 2 Mbps (150 kbps to
// 2 Mbps), an IDR every 2 s, and log, the source's logger.
func CheckDefaults(t *testing.T, v encoder.H264Options, log *slog.Logger) {
	t.Helper()
	if v.Width != 640 || v.Height != 480 || v.FPS != 30 || v.Bitrate != 2_000_000 ||
		v.MinBitrate != 150_000 || v.MaxBitrate != 2_000_000 || v.KeyframeInterval != 2*time.Second {
		t.Errorf("video defaults = %+v", v)
	}
	if v.Logger != log {
		t.Errorf("video Logger = %p, want the source's %p", v.Logger, log)
	}
}
