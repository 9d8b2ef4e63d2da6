package media

import (
	"sync"
	"time"

	"github.com/pion/rtp/codecs"
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

// RTPPayloadSize is the largest RTP payload that Frame.Payloads produces.
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

	payloadOnce sync.Once
	payloads    [][]byte
}

// Payloads returns the frame cut into RTP payloads (RFC 6184 packetization
// mode 1 for H.264, RFC 7587 for Opus). It is computed once and shared by
// every viewer, which keeps per-viewer memory to a ring of references.
func (f *Frame) Payloads() [][]byte {
	f.payloadOnce.Do(func() {
		switch f.Kind {
		case Video:
			p := &codecs.H264Payloader{}
			f.payloads = p.Payload(RTPPayloadSize, f.Data)
		default:
			f.payloads = [][]byte{f.Data}
		}
	})
	return f.payloads
}
