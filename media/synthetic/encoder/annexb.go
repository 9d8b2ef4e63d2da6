package encoder

// H.264 NAL unit types that the encoder looks for.
const (
	nalIDR = 5
	nalSPS = 7
	nalPPS = 8
)

// NALUnits splits an Annex-B byte stream into NAL units (without their start
// codes). It never fails: bytes before the first start code are ignored.
func NALUnits(b []byte) [][]byte {
	var nalus [][]byte
	start := -1
	i := 0
	for i+2 < len(b) {
		// A start code is 00 00 01 (a leading extra zero belongs to the
		// 4-byte form and is trimmed from the previous unit below).
		if b[i] == 0 && b[i+1] == 0 && b[i+2] == 1 {
			if start >= 0 {
				nalus = appendNALU(nalus, b[start:i])
			}
			i += 3
			start = i
			continue
		}
		i++
	}
	if start >= 0 && start < len(b) {
		nalus = appendNALU(nalus, b[start:])
	}
	return nalus
}

// appendNALU trims the trailing zero bytes that belong to the next start
// code (or are trailing_zero_8bits) and drops empty units.
func appendNALU(nalus [][]byte, n []byte) [][]byte {
	for len(n) > 0 && n[len(n)-1] == 0 {
		n = n[:len(n)-1]
	}
	if len(n) == 0 {
		return nalus
	}
	return append(nalus, n)
}

// NALType returns the nal_unit_type of a NAL unit, or 0 for an empty one.
func NALType(nalu []byte) int {
	if len(nalu) == 0 {
		return 0
	}
	return int(nalu[0] & 0x1f)
}

// HasIDR reports whether an Annex-B access unit contains an IDR slice: a
// decoder can start from it.
func HasIDR(au []byte) bool {
	for _, n := range NALUnits(au) {
		if NALType(n) == nalIDR {
			return true
		}
	}
	return false
}

// withParameterSets returns au with sps and pps prepended unless au already
// carries its own SPS and PPS. It is the safety net that keeps every IDR
// decodable on its own whatever the encoder's SPS/PPS strategy.
func withParameterSets(au []byte, nalus [][]byte, sps, pps []byte) []byte {
	hasSPS, hasPPS := false, false
	for _, n := range nalus {
		switch NALType(n) {
		case nalSPS:
			hasSPS = true
		case nalPPS:
			hasPPS = true
		}
	}
	if (hasSPS && hasPPS) || sps == nil || pps == nil {
		return au
	}
	out := make([]byte, 0, len(au)+len(sps)+len(pps)+8)
	out = append(out, 0, 0, 0, 1)
	out = append(out, sps...)
	out = append(out, 0, 0, 0, 1)
	out = append(out, pps...)
	return append(out, au...)
}
