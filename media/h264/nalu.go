package h264

import (
	"bytes"

	"github.com/bluenviron/mediacommon/v2/pkg/bits"
	mch264 "github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

// NAL unit types that the splitter and ParamSets look at (ITU-T H.264
// Table 7-1).
const (
	naluNonIDR    = byte(mch264.NALUTypeNonIDR)
	naluPartA     = byte(mch264.NALUTypeDataPartitionA)
	naluIDR       = byte(mch264.NALUTypeIDR)
	naluSEI       = byte(mch264.NALUTypeSEI)
	naluSPS       = byte(mch264.NALUTypeSPS)
	naluPPS       = byte(mch264.NALUTypePPS)
	naluAUD       = byte(mch264.NALUTypeAccessUnitDelimiter)
	naluEndOfSeq  = byte(mch264.NALUTypeEndOfSequence)
	naluEndOfStrm = byte(mch264.NALUTypeEndOfStream)
)

var startCode = []byte{0, 0, 1}

// naluType returns the nal_unit_type of a NAL unit (without start code).
func naluType(nalu []byte) byte { return nalu[0] & 0x1f }

// validHeader reports whether a NAL unit header byte may occur in an H.264
// stream: forbidden_zero_bit clear and a type that is neither unspecified
// (0, 24-31) nor reserved (16-18, 21-23).
func validHeader(h byte) bool {
	if h&0x80 != 0 {
		return false
	}
	switch t := h & 0x1f; {
	case t == 0, t >= 16 && t <= 18, t >= 21:
		return false
	}
	return true
}

// firstMBInSlice reads first_mb_in_slice, the first field of a slice
// header. prefix is the beginning of a slice NAL unit including its header
// byte; ok is false when it is too short to hold the field.
func firstMBInSlice(prefix []byte) (mb uint32, ok bool) {
	b := prefix[1:]
	if len(b) > 16 {
		b = b[:16]
	}
	if bytes.Contains(b, []byte{0, 0, 3}) {
		b = mch264.EmulationPreventionRemove(b)
	}
	pos := 0
	v, err := bits.ReadGolombUnsigned(b, &pos)
	if err != nil {
		return 0, false
	}
	return v, true
}

// NALUs returns the NAL units of an Annex-B byte string (such as
// AccessUnit.Data or an encoder's output) without their start codes and
// trailing zero bytes. It never fails: bytes before the first start code
// are ignored, and so are empty units. The result shares memory with b.
func NALUs(b []byte) [][]byte {
	if !bytes.Contains(b, startCode) {
		return nil
	}
	var out [][]byte
	EachNALU(b, func(off, end int) {
		if nalu := bytes.TrimRight(b[off:end], "\x00"); len(nalu) > 0 {
			out = append(out, nalu)
		}
	})
	return out
}

// EachNALU calls fn with the bounds of each NAL unit of an Annex-B byte
// string as RTP payloaders cut it (pion's H264Payloader): b[off:end]
// without its start code (3 or 4 bytes), with any other zero bytes
// before the next one, possibly empty; bytes before the first start
// code are left out, and a string without one is a single unit.
func EachNALU(b []byte, fn func(off, end int)) {
	start := bytes.Index(b, startCode)
	if start < 0 {
		fn(0, len(b))
		return
	}
	skip := 3
	for start < len(b) {
		next := bytes.Index(b[start+skip:], startCode)
		if next < 0 {
			fn(start+skip, len(b))
			return
		}
		next += start + skip
		four := b[next-1] == 0
		if four {
			next--
		}
		fn(start+skip, next)
		start = next
		skip = 3
		if four {
			skip = 4
		}
	}
}

// appendNALU appends nalu to b behind a 4-byte start code.
func appendNALU(b, nalu []byte) []byte {
	b = append(b, 0, 0, 0, 1)
	return append(b, nalu...)
}
