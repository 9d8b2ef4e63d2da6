package media

import (
	"encoding/binary"
	"sync"
	"time"

	"github.com/camd-project/camd/media/h264"
)

// Kind tells audio frames from video frames.
type Kind uint8

// Frame kinds.
const (
	Video Kind = iota + 1
	Audio
)

func (k Kind) String() string {
	switch k {
	case Video:
		return "video"
	case Audio:
		return "audio"
	}
	return "unknown"
}

// RTPPayloadSize is the largest RTP payload that Frame.Payload produces.
// 1200 bytes of payload plus the RTP header, header extensions and the SRTP
// tag stay below the 1280-byte IPv6 minimum MTU.
const RTPPayloadSize = 1160

// Frame is one encoded unit: an H.264 access unit in Annex-B form (video) or
// one Opus packet (audio). A published frame is shared by every consumer and
// must not be modified.
type Frame struct {
	Kind Kind
	// Data is the encoded payload.
	Data []byte
	// PTS is the presentation time from the start of the stream. It only
	// grows within one run of a source.
	PTS time.Duration
	// Captured is the wall-clock time the raw frame was captured (or read,
	// for passthrough). It measures latency inside camd.
	Captured time.Time
	// Key marks a video frame that a decoder can start from (IDR with its
	// SPS and PPS).
	Key bool
	// Seq is assigned by the hub: the order in which frames were published.
	Seq uint64
	// G711 is, on an audio frame of a source that has the PCM, the same
	// sound as G.711 µ-law at 8 kHz (media/g711), for RTSP clients
	// without Opus; nil otherwise.
	G711 []byte

	epoch uint32

	cutOnce sync.Once
	pieces  []piece
}

// piece is one RTP payload of a frame, described rather than copied: the
// head (an FU-A's indicator and header, or a whole STAP-A), then
// Data[off:end].
type piece struct {
	stap     []byte // a STAP-A (SPS and PPS), whole
	off, end int32
	fu       [2]byte
	isFU     bool
}

// cut describes the frame's RTP payloads once (RFC 6184 packetization mode
// 1 for H.264, as pion's H264Payloader cuts it, RFC 7587 for Opus): the
// payloads themselves are Data's bytes, so that a frame held by the hub's
// cached group of pictures and the viewers' NACK histories is held once,
// not again as payloads.
func (f *Frame) cut() []piece {
	f.cutOnce.Do(func() {
		if f.Kind != Video {
			f.pieces = []piece{{end: int32(len(f.Data))}}
			return
		}
		f.pieces = cutH264(f.Data, RTPPayloadSize)
	})
	return f.pieces
}

// Packets is the number of RTP payloads the frame is sent in.
func (f *Frame) Packets() int { return len(f.cut()) }

// Payload returns the frame's i-th RTP payload. One that is a part of Data
// as it is (a NAL unit that fits, an Opus packet) is returned without a
// copy; an FU-A fragment, which needs its two header bytes before a part
// of Data, is appended to buf[:0] (RTPPayloadSize bytes hold any; a nil
// buf allocates). The payload must not be modified, and one written into
// buf lasts until buf is reused.
func (f *Frame) Payload(i int, buf []byte) []byte {
	p := f.cut()[i]
	body := f.Data[p.off:p.end]
	switch {
	case p.stap != nil:
		return p.stap
	case p.isFU:
		buf = append(buf[:0], p.fu[0], p.fu[1])
		return append(buf, body...)
	}
	return body
}

// H.264 NAL unit types and bits for packetization (RFC 6184).
const (
	naluTypeMask = 0x1f
	naluNRIMask  = 0x60
	naluSPS      = 7
	naluPPS      = 8
	naluAUD      = 9
	naluFiller   = 12
	stapAHeader  = 0x78 // NRI 3, type 24, as pion writes it
	naluFUA      = 28
)

// cutH264 cuts an Annex-B access unit into RTP payloads of at most mtu
// bytes as pion's codecs.H264Payloader does (the same bytes on the wire,
// TestCutH264MatchesPion): access unit delimiters and filler are left
// out, SPS and PPS go together in a STAP-A before the next NAL unit, a NAL
// unit that fits is a payload of its own and a larger one is cut into
// FU-A fragments.
func cutH264(au []byte, mtu int) []piece {
	var pieces []piece
	var sps, pps []byte
	h264.EachNALU(au, func(off, end int) {
		nalu := au[off:end]
		if len(nalu) == 0 {
			return
		}
		typ, nri := nalu[0]&naluTypeMask, nalu[0]&naluNRIMask
		switch {
		case typ == naluAUD || typ == naluFiller:
			return
		case typ == naluSPS:
			sps = nalu
			return
		case typ == naluPPS:
			pps = nalu
			return
		case sps != nil && pps != nil:
			stap := make([]byte, 0, 5+len(sps)+len(pps))
			stap = append(stap, stapAHeader)
			stap = binary.BigEndian.AppendUint16(stap, uint16(len(sps)))
			stap = append(stap, sps...)
			stap = binary.BigEndian.AppendUint16(stap, uint16(len(pps)))
			stap = append(stap, pps...)
			if len(stap) <= mtu {
				pieces = append(pieces, piece{stap: stap})
			}
			sps, pps = nil, nil
		}
		if len(nalu) <= mtu {
			pieces = append(pieces, piece{off: int32(off), end: int32(end)})
			return
		}
		most := mtu - 2
		for at := off + 1; at < end; at += most {
			to := min(at+most, end)
			hdr := typ
			switch {
			case at == off+1:
				hdr |= 0x80 // start
			case to == end:
				hdr |= 0x40 // end
			}
			pieces = append(pieces, piece{off: int32(at), end: int32(to), fu: [2]byte{naluFUA | nri, hdr}, isFU: true})
		}
	})
	return pieces
}
