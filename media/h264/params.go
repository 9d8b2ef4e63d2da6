package h264

import "bytes"

// ParamSets remembers the last sequence and picture parameter sets of a
// stream so that keyframes that lack them can be made decodable alone: an
// encoder may send them once at the start, but a viewer joining later
// starts from a keyframe. The zero value is ready to use.
type ParamSets struct {
	sps, pps [][]byte
}

// SPS returns the last SPS NAL unit seen, or nil.
func (p *ParamSets) SPS() []byte {
	if len(p.sps) == 0 {
		return nil
	}
	return p.sps[0]
}

// Complete remembers the parameter sets that au carries and returns au,
// with the remembered SPS and PPS inserted (after any access unit
// delimiter) when it is a keyframe that lacks them. The result's HasSPS
// and HasPPS then tell whether the keyframe is decodable alone. au.Data is
// never modified: an access unit that needs the parameter sets gets a new
// Data, with 4-byte start codes.
func (p *ParamSets) Complete(au AccessUnit) AccessUnit {
	if !au.HasSPS && !au.HasPPS && !au.Key {
		return au
	}
	nalus := NALUs(au.Data)
	var sps, pps [][]byte
	for _, n := range nalus {
		switch naluType(n) {
		case naluSPS:
			sps = append(sps, bytes.Clone(n))
		case naluPPS:
			pps = append(pps, bytes.Clone(n))
		}
	}
	if len(sps) > 0 {
		p.sps = sps
	}
	if len(pps) > 0 {
		p.pps = pps
	}
	if !au.Key || (au.HasSPS && au.HasPPS) ||
		(!au.HasSPS && len(p.sps) == 0) || (!au.HasPPS && len(p.pps) == 0) {
		return au
	}
	size := len(au.Data)
	for _, n := range p.sps {
		size += 4 + len(n)
	}
	for _, n := range p.pps {
		size += 4 + len(n)
	}
	out := make([]byte, 0, size+4*len(nalus))
	i := 0
	for ; i < len(nalus) && naluType(nalus[i]) == naluAUD; i++ {
		out = appendNALU(out, nalus[i])
	}
	// SPS before PPS before the rest, whether inline or remembered.
	for _, n := range p.sps {
		out = appendNALU(out, n)
	}
	for _, n := range p.pps {
		out = appendNALU(out, n)
	}
	for _, n := range nalus[i:] {
		if t := naluType(n); t != naluSPS && t != naluPPS {
			out = appendNALU(out, n)
		}
	}
	au.Data = out
	au.HasSPS, au.HasPPS = true, true
	return au
}

// Join makes an access unit of NAL units without start codes (an MP4
// sample's, say): Annex-B with 4-byte start codes, and what it holds.
func Join(nalus [][]byte) AccessUnit {
	var au AccessUnit
	for _, n := range nalus {
		if len(n) > 0 {
			au.Data = appendNALU(au.Data, n)
			au.mark(n)
		}
	}
	return au
}

// Describe returns the access unit whose Annex-B bytes are data (an
// encoder's output, say) with what its NAL units are: Key, HasSPS and
// HasPPS. Its Data is data itself.
func Describe(data []byte) AccessUnit {
	au := AccessUnit{Data: data}
	for _, n := range NALUs(data) {
		au.mark(n)
	}
	return au
}

// mark sets the flag that a NAL unit of the access unit calls for.
func (au *AccessUnit) mark(nalu []byte) {
	switch naluType(nalu) {
	case naluIDR:
		au.Key = true
	case naluSPS:
		au.HasSPS = true
	case naluPPS:
		au.HasPPS = true
	}
}
