//go:build linux && cgo && !camd_nocapture

package alsa

import (
	"slices"
	"testing"
	"time"

	"github.com/camd-project/camd/internal/testenv"
)

// TestSpeakerPlayout: on ALSA's "null" PCM (no sound card needed), what
// the speaker plays is on its playout: the recent past holds the tone.
func TestSpeakerPlayout(t *testing.T) {
	s, err := Open("null", nil)
	if err != nil {
		t.Fatalf("open the null PCM: %v", err)
	}
	defer s.Close()
	tone := make([]int16, 4800) // 100 ms of a square wave
	for i := range tone {
		tone[i] = 8000
		if i/24%2 == 1 {
			tone[i] = -8000
		}
	}
	// The null PCM takes what it is given as fast as the callbacks
	// run, not on a sound card's clock (the line is restamped often):
	// the test asks only that what the device took is on its playout,
	// in the recent past: silence before the tone, then the tone (a
	// half period of it whole, between its edges).
	look := make([]int16, 48000) // 1 s
	testenv.Eventually(t, "silence on the playout", func() bool {
		return s.Playout(look, time.Now().Add(-500*time.Millisecond)) &&
			!slices.ContainsFunc(look, func(v int16) bool { return v != 0 })
	})
	half := append(append([]int16{-8000}, tone[:24]...), -8000)
	testenv.Eventually(t, "the tone on the playout", func() bool {
		if err := s.Play(tone); err != nil {
			t.Fatal(err)
		}
		if !s.Playout(look, time.Now().Add(-500*time.Millisecond)) {
			return false
		}
		for i := 0; i+len(half) <= len(look); i++ {
			if slices.Equal(look[i:i+len(half)], half) {
				return true
			}
		}
		return false
	})
	if s.Playout(look, time.Now().Add(time.Hour)) {
		t.Fatal("knew what plays in an hour")
	}
}
