// Package tonetest measures test tones in PCM for the tests of the
// audio paths (talk, G.711, calls, the qemu call smoke): how much of a
// signal's power is at one frequency (the Goertzel algorithm), so that
// a test hears a tone the way a listener would rather than comparing
// bytes.
package tonetest

import "math"

// Share is the share of the power of pcm (48 kHz) at hz: near 1 for a
// pure tone of hz, near 0 for silence or another tone.
func Share(pcm []int16, hz float64) float64 {
	k := 2 * math.Cos(2*math.Pi*hz/48000)
	var s1, s2, energy float64
	for _, x := range pcm {
		v := float64(x)
		s1, s2 = v+k*s1-s2, s1
		energy += v * v
	}
	if energy == 0 {
		return 0
	}
	return (s1*s1 + s2*s2 - k*s1*s2) / (energy * float64(len(pcm)) / 2)
}
