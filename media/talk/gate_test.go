package talk

import (
	"math"
	"testing"
	"testing/synctest"
	"time"
)

// tone20ms is 20 ms of a 1 kHz tone at amplitude amp.
func tone20ms(amp float64) []int16 {
	pcm := make([]int16, 960)
	for i := range pcm {
		pcm[i] = int16(amp * math.Sin(2*math.Pi*1000*float64(i)/48000))
	}
	return pcm
}

func rms(pcm []int16) float64 {
	var e float64
	for _, s := range pcm {
		e += float64(s) * float64(s)
	}
	return math.Sqrt(e / float64(len(pcm)))
}

// TestGateHoldsMicrophoneDown: while the phone's voice plays, and for
// the hang time after, the microphone is Attenuation dB down; quiet
// phone audio (under the threshold) leaves it open; the gain ramps.
func TestGateHoldsMicrophoneDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sp := &fakeSpeaker{}
		g := NewGate(GateOptions{})
		out := g.Speaker(sp)
		mic := func() float64 {
			pcm := tone20ms(10000)
			g.Mic(pcm, time.Now())
			return 20 * math.Log10(rms(pcm)/rms(tone20ms(10000)))
		}
		if db := mic(); db != 0 {
			t.Fatalf("open microphone changed by %.1f dB", db)
		}
		out.Play(tone20ms(100)) // -50 dBFS: not voice
		if db := mic(); db != 0 || len(sp.pcm) != 960 {
			t.Fatalf("quiet phone audio: microphone %.1f dB, speaker got %d samples", db, len(sp.pcm))
		}
		out.Play(tone20ms(8000))
		first := mic() // ramps down across the block
		if first > -3 || first < -20 {
			t.Fatalf("first block after voice: %.1f dB, want a ramp", first)
		}
		if db := mic(); db > -29 {
			t.Fatalf("while the phone talks: %.1f dB, want -30", db)
		}
		time.Sleep(20*time.Millisecond + 200*time.Millisecond - time.Millisecond) // played, and the hang
		if db := mic(); db > -29 {
			t.Fatalf("within the hang time: %.1f dB", db)
		}
		time.Sleep(2 * time.Millisecond)
		if !g.Talking(time.Now().Add(-2*time.Millisecond)) || g.Talking(time.Now()) {
			t.Fatal("Talking does not end at the hang time")
		}
		mic() // ramps up
		if db := mic(); db != 0 {
			t.Fatalf("after the hang: %.1f dB", db)
		}
		// Packets queue: five at once hold the microphone for all five.
		for range 5 {
			out.Play(tone20ms(8000))
		}
		if !g.Talking(time.Now().Add(100*time.Millisecond + 199*time.Millisecond)) {
			t.Fatal("queued packets do not hold the microphone until they have played")
		}
	})
}
