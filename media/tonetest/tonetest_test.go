package tonetest

import (
	"math"
	"testing"
)

func TestShare(t *testing.T) {
	tone := func(hz float64) []int16 {
		pcm := make([]int16, 4800)
		for i := range pcm {
			pcm[i] = int16(8000 * math.Sin(2*math.Pi*hz*float64(i)/48000))
		}
		return pcm
	}
	if s := Share(tone(1000), 1000); s < 0.95 || s > 1.05 {
		t.Errorf("a 1 kHz tone at 1 kHz: %.3f, want about 1", s)
	}
	if s := Share(tone(440), 1000); s > 0.01 {
		t.Errorf("a 440 Hz tone at 1 kHz: %.3f, want about 0", s)
	}
	if s := Share(make([]int16, 4800), 1000); s != 0 {
		t.Errorf("silence: %.3f", s)
	}
}
