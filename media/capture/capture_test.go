package capture

import (
	"strings"
	"testing"

	"github.com/camd-project/camd/media/encoder"
	"github.com/camd-project/camd/media/encoder/encodertest"
)

func TestValidate(t *testing.T) {
	encodertest.CheckValidate(t, "capture", func(v encoder.H264Options) error {
		_, err := New(Options{Device: "/dev/video2", Video: v})
		return err
	})
}

func TestValidateMicrophone(t *testing.T) {
	tests := []struct {
		mic  string
		want string // "" for valid
	}{
		{"", ""},
		{"USB", ""},
		{"plughw:CARD=C920,DEV=0", ""},
		{"Mikrofon (Äußeres)", ""},
		{strings.Repeat("m", 255), ""},
		{strings.Repeat("m", 256), `capture: Microphone "` + strings.Repeat("m", 256) + `" must be at most 255 bytes without control characters`},
		{"hw:1\x00", `capture: Microphone "hw:1\x00" must be at most 255 bytes without control characters`},
		{"USB\n", `capture: Microphone "USB\n" must be at most 255 bytes without control characters`},
	}
	for _, tt := range tests {
		_, err := New(Options{Microphone: tt.mic})
		if (err == nil) != (tt.want == "") || (err != nil && err.Error() != tt.want) {
			t.Errorf("Microphone %q: New = %v, want %q", tt.mic, err, tt.want)
		}
	}
}

func TestDefaults(t *testing.T) {
	src, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	o := src.Options()
	if o.Device != "/dev/video0" {
		t.Errorf("Device = %q, want /dev/video0", o.Device)
	}
	encodertest.CheckDefaults(t, o.Video, o.Logger)
	if info := src.Info(); !info.ForcesKeyframes || info.Name != "capture /dev/video0" {
		t.Errorf("Info = %+v", info)
	}
	// Audio is on by default, from ALSA's default device.
	if o.NoAudio || o.Microphone != "" {
		t.Errorf("NoAudio = %v, Microphone = %q; want the default microphone", o.NoAudio, o.Microphone)
	}
}
