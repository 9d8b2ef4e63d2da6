package g711

import (
	"math"
	"testing"
)

// TestMuLawRoundTrip: every sample comes back within the step of its
// segment (G.711's quantisation), and the code is the standard one.
func TestMuLawRoundTrip(t *testing.T) {
	for _, c := range []struct {
		s int16
		b byte
	}{{0, 0xff}, {-1, 0x7f}, {32767, 0x80}, {-32768, 0x00}} {
		if got := MuLaw(c.s); got != c.b {
			t.Errorf("MuLaw(%d) = %#x, want %#x", c.s, got, c.b)
		}
	}
	for s := -32768; s <= 32767; s += 7 {
		back := int(Decode(MuLaw(int16(s))))
		if err := math.Abs(float64(back - s)); err > math.Max(16, math.Abs(float64(s))/16) {
			t.Fatalf("%d came back as %d", s, back)
		}
	}
}

// tone is n samples of a sine of hz at 48 kHz, from sample start.
func tone(hz float64, start, n int) []int16 {
	pcm := make([]int16, n)
	for i := range pcm {
		pcm[i] = int16(16000 * math.Sin(2*math.Pi*hz*float64(start+i)/48000))
	}
	return pcm
}

// rms is the loudness of decoded µ-law, skipping the filter's start.
func rms(b []byte) float64 {
	var sum float64
	for _, x := range b[20:] {
		v := float64(Decode(x))
		sum += v * v
	}
	return math.Sqrt(sum / float64(len(b)-20))
}

// TestEncoderKeepsVoiceAndDropsWhatWouldFold: a 440 Hz tone (camd's
// synthetic beep) comes through at its level across blocks; 10 kHz,
// which 8 kHz sampling would fold to 2 kHz, is filtered out.
func TestEncoderKeepsVoiceAndDropsWhatWouldFold(t *testing.T) {
	var low, high Encoder
	var outLow, outHigh []byte
	for blk := range 10 {
		outLow = append(outLow, low.Encode(tone(440, blk*960, 960))...)
		outHigh = append(outHigh, high.Encode(tone(10000, blk*960, 960))...)
	}
	if len(outLow) != 1600 {
		t.Fatalf("%d bytes for 200 ms, want 1600", len(outLow))
	}
	if r := rms(outLow); r < 16000/math.Sqrt2*0.9 || r > 16000/math.Sqrt2*1.1 {
		t.Errorf("440 Hz came out at RMS %.0f, want about %.0f", r, 16000/math.Sqrt2)
	}
	if r := rms(outHigh); r > 300 {
		t.Errorf("10 kHz came out at RMS %.0f: it would fold back", r)
	}
	// Continuous across blocks: the same as one long block.
	var whole Encoder
	one := whole.Encode(tone(440, 0, 9600))
	for i := range one {
		if one[i] != outLow[i] {
			t.Fatalf("byte %d differs between blocks and one block", i)
		}
	}
}

func BenchmarkEncode20ms(b *testing.B) {
	var e Encoder
	pcm := tone(440, 0, 960)
	for b.Loop() {
		e.Encode(pcm)
	}
}
