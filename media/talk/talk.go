package talk

import (
	"errors"
	"log/slog"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/pion/rtp"

	"github.com/camd-project/camd/media/g711"
)

// ErrCodec is a codec this build cannot play (Opus without cgo).
var ErrCodec = errors.New("talk: codec not supported in this build")

// speaker plays 48 kHz mono PCM (board.Speaker).
type speaker interface {
	Play(pcm []int16) error
}

// heard is a speaker whose audio the echo handling (the Gate, the
// Canceller) hears as the far end before it plays.
type heard struct {
	far func(pcm []int16)
	sp  speaker
}

func (s heard) Play(pcm []int16) error {
	s.far(pcm)
	return s.sp.Play(pcm)
}

// decoder turns one packet's payload into 48 kHz PCM appended to dst;
// conceal makes up a lost packet of n samples.
type decoder interface {
	decode(dst []int16, payload []byte) ([]int16, error)
	conceal(dst []int16, n int) []int16
}

// Options configure a Player. The zero value of each field means its
// default.
type Options struct {
	// Depth, when set, is how many later packets the jitter buffer
	// holds while it waits for a missing one before it gives the missing
	// one up. In-order packets play at once. Unset, the depth follows
	// the measured jitter (RFC 3550's interarrival jitter estimate):
	// JitterMultiple times the jitter, in packets, rounded up, from
	// MinDepth to MaxDepth.
	Depth int
	// MinDepth and MaxDepth bound the depth that follows the jitter
	// (defaults 2 and 10: 40 ms and 200 ms of 20 ms packets).
	MinDepth, MaxDepth int
	// JitterMultiple is how many times the jitter the buffer waits for
	// a missing packet (default 3).
	JitterMultiple float64
	// Now is the clock packets arrive on (default time.Now).
	Now func() time.Time
	// Volume is the speaker volume from 0 to 1, read for each packet
	// (default: 1).
	Volume func() float64
	Logger *slog.Logger
}

// Player plays a call's phone audio: RTP packets, reordered by a small
// bounded jitter buffer, decoded to 48 kHz PCM (G.711 in every build,
// Opus with cgo), losses concealed, at the volume setting. Its methods
// are safe for concurrent use.
type Player struct {
	sp   speaker
	opts Options

	mu      sync.Mutex
	dec     decoder
	mime    string
	started bool
	next    uint16                 // the sequence number to play next
	held    map[uint16]*rtp.Packet // arrived ahead of next
	last    int                    // samples in the last packet played
	jitter  jitterEstimate
	stats   Stats
}

// Stats counts what a Player did.
type Stats struct {
	Played, Concealed, Late, Refused uint64
	// Jitter is the interarrival jitter estimate; Depth the buffer's
	// depth in packets now.
	Jitter time.Duration
	Depth  int
}

// jitterEstimate is RFC 3550's interarrival jitter (section 6.4.1):
// J += (|D| - J) / 16, D the difference between two packets' spacing in
// arrival time and in RTP timestamp.
type jitterEstimate struct {
	j       float64 // seconds
	arrived time.Time
	ts      uint32
	started bool
}

// observe takes a packet's arrival time and RTP timestamp, at clock
// rate hz.
func (e *jitterEstimate) observe(at time.Time, ts uint32, hz float64) {
	if e.started {
		d := at.Sub(e.arrived).Seconds() - float64(int32(ts-e.ts))/hz
		e.j += (math.Abs(d) - e.j) / 16
	}
	e.arrived, e.ts, e.started = at, ts, true
}

// New returns a player for sp.
func New(sp speaker, opts Options) *Player {
	if opts.MinDepth <= 0 {
		opts.MinDepth = 2
	}
	if opts.MaxDepth < opts.MinDepth {
		opts.MaxDepth = max(10, opts.MinDepth)
	}
	if opts.JitterMultiple <= 0 {
		opts.JitterMultiple = 3
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Volume == nil {
		opts.Volume = func() float64 { return 1 }
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Player{sp: sp, opts: opts, held: map[uint16]*rtp.Packet{}}
}

// newDecoder returns the decoder of a codec's MIME type ("audio/PCMU").
func newDecoder(mime string) (decoder, error) {
	switch strings.ToLower(mime) {
	case "audio/pcmu":
		return &g711Decoder{d: g711.Decoder{Law: g711.MuLawLaw}}, nil
	case "audio/pcma":
		return &g711Decoder{d: g711.Decoder{Law: g711.ALawLaw}}, nil
	case "audio/opus":
		return newOpus()
	}
	return nil, ErrCodec
}

// Packet takes one RTP packet of the phone's audio in the codec of MIME
// type mime ("audio/PCMU", "audio/PCMA", "audio/opus"), and plays what
// is due: itself when it is the next, else once the buffer gives up on
// the packets missing before it.
func (p *Player) Packet(mime string, pkt *rtp.Packet) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dec == nil || !strings.EqualFold(mime, p.mime) {
		d, err := newDecoder(mime)
		if err != nil {
			if p.stats.Refused == 0 {
				p.opts.Logger.Warn("talk: phone audio not played", "codec", mime, "err", err)
			}
			p.stats.Refused++
			return
		}
		p.dec, p.mime, p.started = d, mime, false
		p.jitter = jitterEstimate{}
		clear(p.held)
	}
	p.jitter.observe(p.opts.Now(), pkt.Timestamp, clockRate(mime))
	seq := pkt.SequenceNumber
	if !p.started {
		p.started, p.next = true, seq
	}
	if int16(seq-p.next) < 0 {
		p.stats.Late++ // given up on, or played already
		return
	}
	if int16(seq-p.next) > int16(4*p.farAhead()) {
		// Far ahead (the phone restarted, or a long outage): start again
		// from here rather than conceal the whole gap.
		clear(p.held)
		p.next = seq
	}
	p.held[seq] = pkt
	p.drain(false)
}

// clockRate is the RTP clock rate of a codec's MIME type.
func clockRate(mime string) float64 {
	if strings.EqualFold(mime, "audio/opus") {
		return 48000
	}
	return 8000
}

// depth is how many later packets the buffer holds while it waits for a
// missing one: Options.Depth, or JitterMultiple times the jitter in
// packets (of the last one's length, 20 ms before any), rounded up and
// bounded.
func (p *Player) depth() int {
	if p.opts.Depth > 0 {
		return p.opts.Depth
	}
	packet := 0.020
	if p.last > 0 {
		packet = float64(p.last) / 48000
	}
	n := int(math.Ceil(p.opts.JitterMultiple * p.jitter.j / packet))
	return min(max(n, p.opts.MinDepth), p.opts.MaxDepth)
}

// farAhead is how many depths ahead a packet restarts the buffer.
func (p *Player) farAhead() int {
	if p.opts.Depth > 0 {
		return p.opts.Depth
	}
	return p.opts.MaxDepth
}

// drain plays what is due: the next packet while it is here, and past a
// missing one once depth() later packets are held (or all, with flush).
func (p *Player) drain(flush bool) {
	var pcm []int16
	for len(p.held) > 0 {
		pkt, ok := p.held[p.next]
		switch {
		case ok:
			delete(p.held, p.next)
			n := len(pcm)
			var err error
			if pcm, err = p.dec.decode(pcm, pkt.Payload); err != nil {
				p.opts.Logger.Debug("talk: packet not decoded", "err", err)
				pcm = p.dec.conceal(pcm[:n], p.last)
				p.stats.Concealed++
			} else {
				p.last = len(pcm) - n
				p.stats.Played++
			}
		case flush || len(p.held) >= p.depth():
			pcm = p.dec.conceal(pcm, max(p.last, 960))
			p.stats.Concealed++
		default:
			p.play(pcm)
			return
		}
		p.next++
	}
	p.play(pcm)
}

func (p *Player) play(pcm []int16) {
	if len(pcm) == 0 {
		return
	}
	if v := p.opts.Volume(); v < 1 {
		v = max(v, 0)
		for i, s := range pcm {
			pcm[i] = int16(float64(s) * v)
		}
	}
	if err := p.sp.Play(pcm); err != nil {
		p.opts.Logger.Debug("talk: speaker", "err", err)
	}
}

// Flush plays what the buffer still holds (the call ended).
func (p *Player) Flush() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dec != nil {
		p.drain(true)
	}
}

// Stats returns the player's counters.
func (p *Player) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.stats
	st.Jitter = time.Duration(p.jitter.j * float64(time.Second))
	st.Depth = p.depth()
	return st
}

// g711Decoder decodes PCMU or PCMA and conceals a loss by repeating the
// last packet, fading: 70% of its level for the first lost packet, less
// for each one after, silent from the fourth.
type g711Decoder struct {
	d      g711.Decoder
	last   []int16
	losses int
}

func (g *g711Decoder) decode(dst []int16, payload []byte) ([]int16, error) {
	n := len(dst)
	dst = g.d.Decode(dst, payload)
	g.last = append(g.last[:0], dst[n:]...)
	g.losses = 0
	return dst, nil
}

func (g *g711Decoder) conceal(dst []int16, n int) []int16 {
	g.losses++
	gain := max(0, 1-0.3*float64(g.losses))
	for i := range n {
		var s int16
		if len(g.last) > 0 {
			s = int16(float64(g.last[i%len(g.last)]) * gain)
		}
		dst = append(dst, s)
	}
	return dst
}
