package g711

import (
	"math"
	"testing"

	"github.com/camd-project/camd/media/tonetest"
)

// TestALawRoundTrip: the standard codes, and every sample back within
// its segment's step.
func TestALawRoundTrip(t *testing.T) {
	for _, c := range []struct {
		s int16
		b byte
	}{{0, 0xd5}, {-8, 0x55}, {32767, 0xaa}, {-32768, 0x2a}} {
		if got := ALaw(c.s); got != c.b {
			t.Errorf("ALaw(%d) = %#x, want %#x", c.s, got, c.b)
		}
	}
	for s := -32768; s <= 32767; s += 7 {
		back := int(DecodeALaw(ALaw(int16(s))))
		if err := math.Abs(float64(back - s)); err > math.Max(16, math.Abs(float64(s))/16) {
			t.Fatalf("%d came back as %d", s, back)
		}
	}
}

// TestDecoderRoundTrip: a 1 kHz tone encoded to µ-law and A-law at 8 kHz
// comes back at 48 kHz as 1 kHz, at its level, across packets.
func TestDecoderRoundTrip(t *testing.T) {
	for _, law := range []Law{MuLawLaw, ALawLaw} {
		var enc Encoder
		dec := Decoder{Law: law}
		var out []int16
		for p := range 25 { // 0.5 s in 20 ms packets
			g := enc.Encode(tone(1000, p*960, 960))
			if law == ALawLaw {
				for i, b := range g {
					g[i] = ALaw(Decode(b))
				}
			}
			out = dec.Decode(out, g)
		}
		if len(out) != 25*960 {
			t.Fatalf("%d samples", len(out))
		}
		body := out[960:]
		if g := tonetest.Share(body, 1000); g < 0.9 {
			t.Errorf("law %d: 1 kHz holds %.2f of the power", law, g)
		}
		var sum float64
		for _, x := range body {
			sum += float64(x) * float64(x)
		}
		if r := math.Sqrt(sum / float64(len(body))); r < 16000/math.Sqrt2*0.85 || r > 16000/math.Sqrt2*1.15 {
			t.Errorf("law %d: rms %.0f, want about %.0f", law, r, 16000/math.Sqrt2)
		}
	}
}
