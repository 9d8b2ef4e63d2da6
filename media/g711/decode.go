package g711

import "math"

// ALaw compands one sample (G.711 A-law, RTP payload type 8).
func ALaw(s int16) byte {
	x, sign := int(s)>>3, 0x80 // 13-bit magnitude
	if x < 0 {
		x, sign = -x-1, 0
	}
	x = min(x, 0xfff)
	var b int
	if x < 32 {
		b = x >> 1
	} else {
		exp := 1
		for x>>(exp+4) > 1 && exp < 7 {
			exp++
		}
		b = exp<<4 | (x>>exp)&0x0f
	}
	return byte(sign|b) ^ 0x55
}

// DecodeALaw expands one A-law byte to a 16-bit sample.
func DecodeALaw(b byte) int16 {
	b ^= 0x55
	exp, mant := int(b>>4)&7, int(b&0x0f)
	var x int
	if exp == 0 {
		x = mant<<4 + 8
	} else {
		x = (mant<<4 + 0x108) << (exp - 1)
	}
	if b&0x80 == 0 {
		x = -x
	}
	return int16(x)
}

// Law is a G.711 companding law.
type Law int

// The two laws: µ-law (PCMU, North America and Japan) and A-law (PCMA,
// elsewhere).
const (
	MuLawLaw Law = iota
	ALawLaw
)

// Decoder turns 8 kHz G.711 into 48 kHz mono 16-bit PCM (the speaker's
// rate): expanded, each sample repeated Decimation times and low-passed
// at 3.4 kHz, so the 8 kHz images are gone. It keeps the filter's
// history across packets: use one Decoder per stream. The zero value
// decodes µ-law.
type Decoder struct {
	Law Law
	buf []float64 // the last taps-1 upsampled samples, then the block
}

// Decode appends the 48 kHz PCM of one packet's G.711 bytes to dst.
func (d *Decoder) Decode(dst []int16, g []byte) []int16 {
	if len(d.buf) < taps-1 {
		d.buf = make([]float64, taps-1, taps-1+len(g)*Decimation)
	}
	d.buf = d.buf[:taps-1]
	for _, b := range g {
		s := Decode(b)
		if d.Law == ALawLaw {
			s = DecodeALaw(b)
		}
		for range Decimation {
			d.buf = append(d.buf, float64(s))
		}
	}
	for i := range len(g) * Decimation {
		var y float64
		for k, c := range lowPass {
			y += c * d.buf[i+k]
		}
		dst = append(dst, int16(max(-32768, min(32767, math.Round(y)))))
	}
	copy(d.buf, d.buf[len(d.buf)-(taps-1):])
	d.buf = d.buf[:taps-1]
	return dst
}
