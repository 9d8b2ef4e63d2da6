// Package encodertest checks what the sources that encode with package
// encoder (synthetic, capture) share: their video options (the defaults and
// the errors that name a field, its value and the allowed range) and the
// shape of their Opus packets.
package encodertest

import (
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/camd-project/camd/media/encoder"
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

// CheckOpusTOC checks that an Opus packet holds one 20 ms mono frame
// (RFC 6716, section 3.1).
func CheckOpusTOC(pkt []byte) error {
	if len(pkt) < 2 {
		return errors.New("encodertest: packet shorter than a TOC byte and a frame")
	}
	toc := pkt[0]
	config := toc >> 3
	var ms20 bool
	switch {
	case config < 12: // SILK: 10, 20, 40, 60 ms
		ms20 = config%4 == 1
	case config < 16: // hybrid: 10, 20 ms
		ms20 = config%2 == 1
	default: // CELT: 2.5, 5, 10, 20 ms
		ms20 = config%4 == 3
	}
	switch {
	case !ms20:
		return fmt.Errorf("encodertest: TOC config %d is not a 20 ms frame", config)
	case toc&0x04 != 0:
		return errors.New("encodertest: TOC says stereo")
	case toc&0x03 != 0:
		return errors.New("encodertest: TOC says more than one frame")
	}
	return nil
}
