package whep

import (
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
)

// assembler rebuilds H.264 access units from RTP packets the way a
// receiver's jitter buffer does: a frame is complete when its marker
// packet and every packet before it have arrived (retransmissions may come
// out of order); frames are handed over in order, and a frame still
// incomplete after repairWindow, with later frames waiting, is lost.
type assembler struct {
	frames   []*pendingFrame
	lastTS   uint32
	lastEnd  uint16 // marker sequence number of the last frame handed over
	haveLast bool
	lost     uint64
	onFrame  func(au []byte, ts uint32)
}

type pendingFrame struct {
	ts        uint32
	first     time.Time
	pkts      map[uint16][]byte
	marker    uint16
	hasMarker bool
	minSeq    uint16
}

// seqBefore reports whether a comes before b in wrapping sequence space.
func seqBefore(a, b uint16) bool { return int16(a-b) < 0 }

func (a *assembler) push(p *rtp.Packet, now time.Time) {
	if a.haveLast && int32(p.Timestamp-a.lastTS) <= 0 {
		return // a late copy of a frame already handed over
	}
	var f *pendingFrame
	for i := len(a.frames) - 1; i >= 0; i-- {
		if a.frames[i].ts == p.Timestamp {
			f = a.frames[i]
			break
		}
	}
	if f == nil {
		f = &pendingFrame{ts: p.Timestamp, first: now, pkts: make(map[uint16][]byte), minSeq: p.SequenceNumber}
		a.frames = append(a.frames, f)
	}
	if _, dup := f.pkts[p.SequenceNumber]; !dup {
		f.pkts[p.SequenceNumber] = p.Payload
	}
	if seqBefore(p.SequenceNumber, f.minSeq) {
		f.minSeq = p.SequenceNumber
	}
	if p.Marker {
		f.marker, f.hasMarker = p.SequenceNumber, true
	}
	a.drain(now)
}

// start returns the first sequence number of the frame at index i.
func (a *assembler) start(i int) uint16 {
	switch {
	case i == 0 && a.haveLast:
		return a.lastEnd + 1
	case i > 0 && a.frames[i-1].hasMarker:
		return a.frames[i-1].marker + 1
	}
	return a.frames[i].minSeq
}

func (a *assembler) complete(i int) bool {
	f := a.frames[i]
	if !f.hasMarker {
		return false
	}
	for s := a.start(i); ; s++ {
		if _, ok := f.pkts[s]; !ok {
			return false
		}
		if s == f.marker {
			return true
		}
	}
}

func (a *assembler) drain(now time.Time) {
	for len(a.frames) > 0 {
		f := a.frames[0]
		switch {
		case a.complete(0):
			var d codecs.H264Packet
			var au []byte
			for s := a.start(0); ; s++ {
				if nal, err := d.Unmarshal(f.pkts[s]); err == nil {
					au = append(au, nal...)
				}
				if s == f.marker {
					break
				}
			}
			a.lastEnd, a.haveLast = f.marker, true
			a.onFrame(au, f.ts)
		case len(a.frames) > 1 && now.Sub(f.first) > repairWindow:
			a.lost++
			a.lastEnd, a.haveLast = f.marker, f.hasMarker
		default:
			return
		}
		a.lastTS = f.ts
		a.frames = a.frames[1:]
	}
}

// pendingLost counts frames still incomplete that have waited longer than
// repairWindow.
func (a *assembler) pendingLost(now time.Time) uint64 {
	var n uint64
	for _, f := range a.frames {
		if now.Sub(f.first) > repairWindow {
			n++
		}
	}
	return n
}
