package capture

import (
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want string // substring of the error; "" for valid
	}{
		{"zero value", Options{}, ""},
		{"720p", Options{Device: "/dev/video2", Width: 1280, Height: 720, FPS: 15}, ""},
		{"odd width", Options{Width: 641}, "capture: Width 641 must be even and within 16..3840"},
		{"fps", Options{FPS: 90}, "capture: FPS 90 must be within 1..60"},
		{"bitrate", Options{Bitrate: 1}, "capture: Bitrate 1 must be within 50000..20000000"},
		{"max below bitrate", Options{Bitrate: 1_000_000, MaxBitrate: 10}, "capture: MaxBitrate 10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.opts.Validate()
			_, newErr := New(tt.opts)
			if tt.want == "" {
				if err != nil || newErr != nil {
					t.Fatalf("Validate = %v, New = %v, want nil", err, newErr)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate = %v, want %q", err, tt.want)
			}
			if newErr == nil {
				t.Fatal("New accepted invalid options")
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	src, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	o := src.Options()
	if o.Device != "/dev/video0" || o.Width != 640 || o.Height != 480 || o.FPS != 30 {
		t.Errorf("defaults = %s %dx%d %d fps", o.Device, o.Width, o.Height, o.FPS)
	}
	if info := src.Info(); !info.ForcesKeyframes || info.Name != "capture /dev/video0" {
		t.Errorf("Info = %+v", info)
	}
}
