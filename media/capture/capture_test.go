package capture

import (
	"testing"

	"github.com/camd-project/camd/media/synthetic/encoder"
	"github.com/camd-project/camd/media/synthetic/encoder/encodertest"
)

func TestValidate(t *testing.T) {
	encodertest.CheckValidate(t, "capture", func(v encoder.H264Options) error {
		_, err := New(Options{Device: "/dev/video2", Video: v})
		return err
	})
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
}
