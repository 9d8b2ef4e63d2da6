// Package g711 makes G.711 µ-law (ITU-T G.711, RTP payload type 0) of
// the 48 kHz PCM that camd's encoding sources capture: the sound that
// NVRs and RTSP clients without Opus can play. A source converts each
// 20 ms block once, beside its Opus encoding, and the frame carries both
// (media.Frame.G711); nothing is encoded per client. It also expands a
// call's phone audio (PCMU or PCMA) back to 48 kHz PCM for the speaker
// (Decoder), in every build: no cgo.
package g711

import "math"

// Rate is the sample rate of G.711: 8 kHz.
const Rate = 8000

// Decimation is the ratio of the input rate (48 kHz) to Rate.
const Decimation = 6

// taps is the length of the anti-aliasing filter.
const taps = 48

// lowPass is a windowed-sinc (Blackman) low-pass filter at 3.4 kHz for
// 48 kHz, unity gain at DC: the band of telephone sound, below 4 kHz
// (half of Rate) so that decimating by 6 does not fold higher tones back.
var lowPass = func() [taps]float64 {
	var h [taps]float64
	fc := 3400.0 / 48000
	sum := 0.0
	for i := range h {
		n := float64(i) - float64(taps-1)/2
		sinc := 2 * fc
		if n != 0 {
			sinc = math.Sin(2*math.Pi*fc*n) / (math.Pi * n)
		}
		w := 0.42 - 0.5*math.Cos(2*math.Pi*float64(i)/(taps-1)) + 0.08*math.Cos(4*math.Pi*float64(i)/(taps-1))
		h[i] = sinc * w
		sum += h[i]
	}
	for i := range h {
		h[i] /= sum
	}
	return h
}()

// Encoder turns 48 kHz mono 16-bit PCM into 8 kHz µ-law. It keeps the
// filter's history across blocks, so a stream of blocks makes one
// continuous sound: use one Encoder per stream. The zero value is ready.
type Encoder struct {
	buf []int16 // the last taps-1 samples, then the block being encoded
}

// Encode returns the µ-law bytes of pcm, whose length must be a multiple
// of Decimation (a 20 ms block is 960 samples: 160 bytes); a shorter
// remainder is dropped.
func (e *Encoder) Encode(pcm []int16) []byte {
	if len(e.buf) < taps-1 {
		e.buf = make([]int16, taps-1, taps-1+len(pcm))
	}
	e.buf = append(e.buf[:taps-1], pcm...)
	out := make([]byte, 0, len(pcm)/Decimation)
	for i := Decimation - 1; i+1 <= len(pcm)-(len(pcm)%Decimation); i += Decimation {
		var y float64
		for k, c := range lowPass {
			y += c * float64(e.buf[i+k])
		}
		out = append(out, MuLaw(int16(max(-32768, min(32767, math.Round(y))))))
	}
	copy(e.buf, e.buf[len(e.buf)-(taps-1):])
	e.buf = e.buf[:taps-1]
	return out
}

// MuLaw compands one sample (G.711 µ-law, with its bias and clipping).
func MuLaw(s int16) byte {
	const bias, clip = 0x84, 32635
	x, sign := int(s), 0
	if x < 0 {
		x, sign = -x, 0x80
	}
	x = min(x, clip) + bias
	exp := 7
	for mask := 0x4000; x&mask == 0 && exp > 0; mask >>= 1 {
		exp--
	}
	mant := (x >> (exp + 3)) & 0x0f
	return ^byte(sign | exp<<4 | mant)
}

// Decode expands one µ-law byte to a 16-bit sample.
func Decode(b byte) int16 {
	b = ^b
	exp, mant := int(b>>4)&7, int(b&0x0f)
	x := ((mant<<3)+0x84)<<exp - 0x84
	if b&0x80 != 0 {
		x = -x
	}
	return int16(x)
}
