package whep

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/camd-project/camd/media"
)

// srInterval is the time between a track's sender reports (as pion's
// report interceptor: RFC 3550 allows a fixed interval this short for a
// session of two).
const srInterval = time.Second

// historySize is how many sent packets a viewer can ask to have resent:
// about 2.5 s of 2 Mbps video, 1 s of 5 Mbps, well beyond the time a
// receiver waits for a repair (WebRTC's jitter buffers give up within a
// second); and of at most historyFrames frames (4 s at 30 fps).
const (
	historySize   = 512
	historyFrames = 128
)

// history is what a video track needs to resend any of its last
// historySize packets: the frames they were cut from (which the viewers
// share, Frame.Payload), each with its timestamp and first sequence
// number, and for each sequence number the frame it belongs to. 2.5 KB
// per viewer, where an entry per packet took 8 KB.
type history struct {
	frames [historyFrames]sentFrame
	next   uint8              // the slot of frames the next frame takes
	frame  [historySize]uint8 // sequence number % historySize → slot in frames
}

type sentFrame struct {
	f     *media.Frame
	ts    uint32
	first uint16 // the sequence number of its first packet
}

// add records that f goes out with timestamp ts from sequence number
// first on, and returns its slot.
func (h *history) add(f *media.Frame, ts uint32, first uint16) uint8 {
	i := h.next
	h.frames[i] = sentFrame{f: f, ts: ts, first: first}
	h.next = (i + 1) % historyFrames
	return i
}

// sent records that sequence number seq carried a packet of the frame
// in slot i.
func (h *history) sent(seq uint16, i uint8) { h.frame[seq%historySize] = i }

// lookup returns the frame, timestamp and packet index that seq carried,
// if it is among the packets the history holds. A slot taken by a later
// frame, or a sequence number taken by a later packet, points to a frame
// whose packets do not include seq.
func (h *history) lookup(seq uint16) (f *media.Frame, ts uint32, idx int, ok bool) {
	sf := h.frames[h.frame[seq%historySize]]
	if sf.f == nil {
		return nil, 0, 0, false
	}
	idx = int(seq - sf.first)
	if idx >= sf.f.Packets() {
		return nil, 0, 0, false
	}
	return sf.f, sf.ts, idx, true
}

var errNotBound = errors.New("whep: track not bound")

// track is one viewer's outgoing audio or video track. It implements
// webrtc.TrackLocal with a single binding, rewrites timestamps so they grow
// smoothly across source restarts and replayed frames, and keeps a ring of
// sent packets to answer NACKs.
type track struct {
	kind     webrtc.RTPCodecType
	id       string
	clock    uint32
	prefer   profile // the stream's H.264 profile (video)
	fallback time.Duration
	// g711 lets an audio track send PCMU (Frame.G711) when the peer
	// takes no Opus: a call's phone. Set before the track is added.
	g711 bool

	// bound is closed once pion has bound the track: pion may report the
	// connection connected a moment before it binds the senders.
	bound     chan struct{}
	bindFirst sync.Once
	// ssrcBound is ssrc, readable without mu (session.onRTCP).
	ssrcBound atomic.Uint32

	mu      sync.Mutex
	w       webrtc.TrackLocalWriter
	ssrc    uint32
	pt      uint8
	pcmu    bool // bound to PCMU: sends Frame.G711 on an 8 kHz clock
	seq     uint16
	started bool
	lastTS  uint32
	lastPTS time.Duration
	epoch   uint32
	history *history // video only: Opus is not retransmitted
	// The header extension IDs the answer negotiated (0: not negotiated):
	// abs-capture-time and playout-delay go on the first packet of each
	// video frame.
	absCaptureID, playoutID uint8
	// hdr, exts and extBuf are reused by every packet (under mu): the
	// send path allocates nothing per packet. Writes are synchronous, so
	// nothing downstream keeps them.
	hdr    rtp.Header
	exts   [4]rtp.Extension // ours, and room for the TWCC interceptor's
	extBuf [8 + 3]byte      // abs-capture-time, playout-delay

	// rtcp writes the track's sender reports (nil: none; WHIP publishing
	// leaves them to pion's interceptor). Set before the track is added.
	rtcp    func([]rtcp.Packet) error
	lastSR  time.Time
	octets  uint64 // payload bytes sent, for the sender report
	packets uint64
	resent  uint64
}

// payloadBufs holds the buffers that FU-A payloads are written into
// (Frame.Payload) on their way to SRTP, which copies them: the frames
// hold no payloads of their own.
var payloadBufs = sync.Pool{New: func() any {
	b := make([]byte, 0, media.RTPPayloadSize)
	return &b
}}

// newTrack returns a track of kind; a video track prefers the H.264
// format of profile p.
func newTrack(kind webrtc.RTPCodecType, p profile) *track {
	t := &track{kind: kind, id: kind.String(), bound: make(chan struct{})}
	switch kind {
	case webrtc.RTPCodecTypeVideo:
		t.clock, t.fallback, t.prefer = 90000, 33*time.Millisecond, p
		t.history = new(history)
	default:
		t.clock, t.fallback = 48000, 20*time.Millisecond
	}
	return t
}

var _ webrtc.TrackLocal = (*track)(nil)

func (t *track) ID() string                { return t.id }
func (t *track) RID() string               { return "" }
func (t *track) StreamID() string          { return "camd" }
func (t *track) Kind() webrtc.RTPCodecType { return t.kind }

// Bind picks the codec to send among those negotiated (pickCodec): the
// session has narrowed them to the one its answer names.
func (t *track) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	c, ok := pickCodec(ctx.CodecParameters(), t.kind, t.prefer, t.g711)
	if !ok {
		return webrtc.RTPCodecParameters{}, webrtc.ErrUnsupportedCodec
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.pcmu = strings.EqualFold(c.MimeType, webrtc.MimeTypePCMU); t.pcmu {
		t.clock = 8000
	}
	t.w = ctx.WriteStream()
	t.ssrc = uint32(ctx.SSRC())
	t.ssrcBound.Store(t.ssrc)
	t.pt = uint8(c.PayloadType)
	t.absCaptureID, t.playoutID = 0, 0
	if t.kind == webrtc.RTPCodecTypeVideo {
		for _, e := range ctx.HeaderExtensions() {
			switch e.URI {
			case absCaptureTimeURI:
				t.absCaptureID = uint8(e.ID)
			case playoutDelayURI:
				t.playoutID = uint8(e.ID)
			}
		}
	}
	t.bindFirst.Do(func() { close(t.bound) })
	return c, nil
}

func (t *track) Unbind(webrtc.TrackLocalContext) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.w = nil
	return nil
}

// timestamp maps a frame's PTS to this viewer's RTP clock. Frames replayed
// from the cache are squeezed one tick apart so the viewer decodes them at
// once instead of playing them out late; a new source epoch or a backwards
// step continues one frame interval after the last timestamp.
func (t *track) timestamp(f *media.Frame, replay bool) uint32 {
	ticks := func(d time.Duration) uint32 { return uint32(d * time.Duration(t.clock) / time.Second) }
	var ts uint32
	switch {
	case !t.started:
		ts = uint32(f.PTS.Milliseconds()) // any start is valid; keep it readable
	case replay:
		ts = t.lastTS + 1
	case f.Epoch() != t.epoch || f.PTS <= t.lastPTS:
		ts = t.lastTS + ticks(t.fallback)
	default:
		ts = t.lastTS + ticks(f.PTS-t.lastPTS)
	}
	t.started, t.lastTS, t.lastPTS, t.epoch = true, ts, f.PTS, f.Epoch()
	return ts
}

// writeFrame sends one frame as RTP packets. It returns the number of
// packets written.
func (t *track) writeFrame(f *media.Frame, replay bool) (int, error) {
	n, sr, err := t.writePackets(f, replay)
	if sr != nil {
		// Not under t.mu: pion's RTCP write takes the DTLS transport's
		// lock, which its Stop holds while it waits for the SRTCP read
		// loop.
		t.rtcp([]rtcp.Packet{sr})
	}
	return n, err
}

// writePackets writes the frame's packets and returns the sender report
// due after them, if one is.
func (t *track) writePackets(f *media.Frame, replay bool) (int, *rtcp.SenderReport, error) {
	n := f.Packets()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.w == nil {
		return 0, nil, errNotBound
	}
	if t.pcmu && len(f.G711) == 0 {
		return 0, nil, nil
	}
	buf := payloadBufs.Get().(*[]byte)
	defer payloadBufs.Put(buf)
	ts := t.timestamp(f, replay)
	var slot uint8
	if t.history != nil {
		slot = t.history.add(f, ts, t.seq+1)
	}
	for i := range n {
		p := f.G711
		if !t.pcmu {
			p = f.Payload(i, *buf)
		}
		t.seq++
		if t.history != nil {
			t.history.sent(t.seq, slot)
		}
		if err := t.send(f, i, p, ts, t.seq); err != nil {
			return i, nil, err
		}
		t.octets += uint64(len(p))
	}
	t.packets += uint64(n)
	if replay {
		return n, nil, nil
	}
	return n, t.report(ts, time.Now()), nil
}

// report returns a sender report to send once srInterval has passed
// since the last, right after a live frame of timestamp ts was written at
// now (nil: none due): what maps the track's RTP clock to the wall clock
// (the browser lines up audio and video by it). A replayed frame's
// timestamp is squeezed, not the clock's, so it sends none. A report that
// fails is lost as a packet would be. t.mu is held.
func (t *track) report(ts uint32, now time.Time) *rtcp.SenderReport {
	if t.rtcp == nil || now.Sub(t.lastSR) < srInterval {
		return nil
	}
	t.lastSR = now
	return &rtcp.SenderReport{
		SSRC: t.ssrc, NTPTime: ntpTime(now), RTPTime: ts,
		PacketCount: uint32(t.packets), OctetCount: uint32(t.octets),
	}
}

// send writes payload, the i-th of frame f, as one RTP packet. The last
// packet of a video frame carries the marker; the first carries the
// negotiated header extensions: the frame's capture time and a playout
// delay of zero.
func (t *track) send(f *media.Frame, i int, payload []byte, ts uint32, seq uint16) error {
	video := t.kind == webrtc.RTPCodecTypeVideo
	h := &t.hdr
	*h = rtp.Header{
		Version:        2,
		PayloadType:    t.pt,
		SequenceNumber: seq,
		Timestamp:      ts,
		SSRC:           t.ssrc,
		Marker:         video && i == f.Packets()-1,
		Extensions:     t.exts[:0],
	}
	if video && i == 0 {
		if t.absCaptureID != 0 && !f.Captured.IsZero() {
			b := t.extBuf[:8]
			rtp.AbsCaptureTimeExtension{Timestamp: ntpTime(f.Captured)}.MarshalTo(b)
			h.SetExtension(t.absCaptureID, b)
		}
		if t.playoutID != 0 {
			b := t.extBuf[8:11]
			rtp.PlayoutDelayExtension{}.MarshalTo(b)
			h.SetExtension(t.playoutID, b)
		}
	}
	_, err := t.w.WriteRTP(h, payload)
	return err
}

// ntpTime is t as a 64-bit NTP timestamp (RFC 5905: seconds since 1900
// and a 32-bit fraction), as abs-capture-time carries it.
func ntpTime(t time.Time) uint64 {
	const unixToNTP = 2208988800
	ns := t.UnixNano()
	secs := uint64(ns/1e9) + unixToNTP
	frac := uint64(ns%1e9) << 32 / 1e9
	return secs<<32 | frac
}

// resend answers a NACK for seq from the history. It reports whether the
// packet was still there.
func (t *track) resend(seq uint16) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.history == nil || t.w == nil {
		return false
	}
	f, ts, idx, ok := t.history.lookup(seq)
	if !ok {
		return false
	}
	buf := payloadBufs.Get().(*[]byte)
	defer payloadBufs.Put(buf)
	if t.send(f, idx, f.Payload(idx, *buf), ts, seq) != nil {
		return false
	}
	t.resent++
	return true
}

func (t *track) counters() (packets, resent uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.packets, t.resent
}

// errSend is a frame that could not be written to a track.
var errSend = errors.New("send failed")

// forward sends the consumer's frames on the tracks (audio may be nil:
// its frames are skipped) until ctx ends, the consumer's hub closes or a
// write fails (errSend). The first frame waits for pion to bind the
// tracks. A replayed group of pictures (passthrough) is paced at
// replayBitrate. sent is called after each video frame, with whether the
// consumer had caught up with live then.
func forward(ctx context.Context, c *media.Consumer, video, audio *track, batch *batchConn, replayBitrate int, sent func(f *media.Frame, caughtUp bool)) error {
	if err := waitBound(ctx, video, audio); err != nil {
		return err
	}
	// Latency is sampled once the viewer has caught up with live: frames
	// that queued up while the cached group of pictures was replayed are
	// late by design.
	caughtUp := false
	var pace replayPacer
	for {
		f, replay, err := c.Next(ctx)
		if err != nil {
			return err
		}
		if !caughtUp && !replay && c.Len() == 0 {
			caughtUp = true
		}
		t := video
		if f.Kind == media.Audio {
			t = audio
			if t == nil {
				continue
			}
		}
		// A frame's packets leave in one sendmmsg (batch: nil sends each
		// packet as it is written).
		batch.cork()
		_, err = t.writeFrame(f, replay)
		batch.uncork()
		if err != nil {
			return fmt.Errorf("%w: %w", errSend, err)
		}
		if replay {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Until(pace.sent(f, replayBitrate, time.Now()))):
			}
		}
		if f.Kind == media.Video {
			sent(f, caughtUp)
		}
	}
}

// readRTCP reads a sender's RTCP until the sender closes, which also
// drives the interceptors (congestion control): a NACK resends from the
// video track's history (nack is told of each; the packets it asks for
// leave together through batch), a PLI or FIR calls key. A live viewer of
// a passthrough source has no such goroutine: its RTCP comes from SRTCP's
// read loop (engine.newAPI, session.onRTCP).
//
// Most of a viewer's RTCP is receiver reports and transport-wide feedback
// (several a second, each naming every packet received), which only the
// interceptors read: a compound packet without NACK, PLI or FIR is not
// parsed here, and one that is reuses the interceptors' parse when they
// made one.
func readRTCP(snd *webrtc.RTPSender, video *track, batch *batchConn, nack, key func()) {
	buf := make([]byte, 1500)
	for {
		n, attrs, err := snd.Read(buf)
		if err != nil {
			return
		}
		if !wantRTCP(buf[:n]) {
			continue
		}
		pkts, err := attrs.GetRTCPPackets(buf[:n])
		if err != nil {
			continue
		}
		answerRTCP(pkts, func(p *rtcp.TransportLayerNack) {
			nack()
			batch.cork()
			for _, pair := range p.Nacks {
				for _, seq := range pair.PacketList() {
					video.resend(seq)
				}
			}
			batch.uncork()
		}, key)
	}
}

// answerRTCP calls nack for each NACK and key for each PLI or FIR.
func answerRTCP(pkts []rtcp.Packet, nack func(*rtcp.TransportLayerNack), key func()) {
	for _, p := range pkts {
		switch p := p.(type) {
		case *rtcp.TransportLayerNack:
			nack(p)
		case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
			key()
		}
	}
}

// wantRTCP says whether a compound RTCP packet holds a NACK (RTPFB, FMT
// 1), a PLI (PSFB, FMT 1) or a FIR (PSFB, FMT 4): what readRTCP answers.
func wantRTCP(b []byte) bool {
	for len(b) >= 4 {
		fmt, pt := b[0]&0x1f, rtcp.PacketType(b[1])
		if pt == rtcp.TypeTransportSpecificFeedback && fmt == rtcp.FormatTLN ||
			pt == rtcp.TypePayloadSpecificFeedback && (fmt == rtcp.FormatPLI || fmt == rtcp.FormatFIR) {
			return true
		}
		next := 4 * (int(binary.BigEndian.Uint16(b[2:4])) + 1)
		if next > len(b) {
			return false
		}
		b = b[next:]
	}
	return false
}
