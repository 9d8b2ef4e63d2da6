package wsd

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/camd-project/camd/discovery/internal/mcast"
	"github.com/camd-project/camd/discovery/internal/ratelimit"
)

// Port and groups of WS-Discovery.
const Port = 3702

var (
	GroupV4 = netip.MustParseAddr("239.255.255.250")
	GroupV6 = netip.MustParseAddr("ff02::c")
)

// Options configure a Responder. The zero value of every limit means its
// default.
type Options struct {
	// Target says what to tell a probe that arrived on interface ifIndex
	// (XAddrs carry that interface's address). Required.
	Target func(ifIndex int, v6 bool) Target
	// Interfaces to join the groups on and answer on; required. Probes
	// arriving on any other interface are ignored.
	Interfaces []net.Interface

	// Rate and Burst bound all replies (default 10/s, burst 20);
	// PerSenderRate and PerSenderBurst bound replies to one address
	// (default 2/s, burst 4).
	Rate           float64
	Burst          int
	PerSenderRate  float64
	PerSenderBurst int
	// MaxReplyFactor bounds a reply's size by the probe's (default 3): a
	// reply that would be larger is sent without scopes, or not at all.
	// camd's ProbeMatch is about 1.1 KB; the ONVIF spec's example Probe
	// is about 600 bytes.
	MaxReplyFactor int
	// MaxDelay is the most a reply to a multicast probe waits, at random,
	// so that many devices do not answer at once (default 100 ms; the
	// spec's APP_MAX_DELAY is 500 ms).
	MaxDelay time.Duration
	Logger   *slog.Logger
}

func (o *Options) defaults() {
	if o.Rate <= 0 {
		o.Rate = 10
	}
	if o.Burst <= 0 {
		o.Burst = 20
	}
	if o.PerSenderRate <= 0 {
		o.PerSenderRate = 2
	}
	if o.PerSenderBurst <= 0 {
		o.PerSenderBurst = 4
	}
	if o.MaxReplyFactor <= 0 {
		o.MaxReplyFactor = 3
	}
	if o.MaxDelay <= 0 {
		o.MaxDelay = 100 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Stats counts what the responder received and did.
type Stats struct {
	Received   uint64 // datagrams read on a chosen interface
	Probes     uint64 // well-formed Probe messages
	Answered   uint64 // ProbeMatches sent
	NoMatch    uint64 // probes for types or scopes not served
	Ignored    uint64 // other actions (Hello, Bye, ProbeMatches…)
	Malformed  uint64 // not parsed, or larger than MaxMessage
	Limited    uint64 // not answered: rate limit
	Oversize   uint64 // not answered: reply would be too large
	Duplicates uint64 // a MessageID already answered
}

// ErrNoInterface is returned when no interface could join a group.
var ErrNoInterface = errors.New("wsd: no interface joined the discovery group")

// Responder answers WS-Discovery probes. Listen starts it; Close stops it.
type Responder struct {
	o      Options
	v4     *ipv4.PacketConn
	v6     *ipv6.PacketConn
	ifaces map[int]bool
	seq    Sequence
	seqMu  sync.Mutex

	mu     sync.Mutex // guards lim and recent across the two read loops
	lim    *ratelimit.Limiter
	recent recent

	queue chan reply
	done  chan struct{}
	wg    sync.WaitGroup
	once  sync.Once

	stats struct {
		received, probes, answered, noMatch, ignored, malformed, limited, oversize, duplicates atomic.Uint64
	}
}

type reply struct {
	b       []byte
	to      netip.AddrPort
	ifIndex int
	due     time.Time
}

// Listen joins the WS-Discovery groups on o.Interfaces (IPv4 and IPv6,
// whichever works), sends Hello and answers probes until Close.
func Listen(o Options) (*Responder, error) {
	o.defaults()
	if o.Target == nil {
		return nil, errors.New("wsd: Options.Target is required")
	}
	r := &Responder{
		o:      o,
		ifaces: map[int]bool{},
		seq:    Sequence{InstanceID: uint32(time.Now().Unix())},
		lim:    newLimiter(o),
		queue:  make(chan reply, 64),
		done:   make(chan struct{}),
	}
	for _, ifi := range o.Interfaces {
		r.ifaces[ifi.Index] = true
	}
	v4, errs4 := mcast.Listen4(&net.UDPAddr{IP: GroupV4.AsSlice(), Port: Port}, o.Interfaces, func(p *ipv4.PacketConn) {
		p.SetControlMessage(ipv4.FlagInterface|ipv4.FlagDst, true)
		p.SetMulticastTTL(1)
	})
	v6, errs6 := mcast.Listen6(&net.UDPAddr{IP: GroupV6.AsSlice(), Port: Port}, o.Interfaces, func(p *ipv6.PacketConn) {
		p.SetControlMessage(ipv6.FlagInterface|ipv6.FlagDst, true)
		p.SetMulticastHopLimit(1)
	})
	r.v4, r.v6 = v4, v6
	if r.v4 == nil && r.v6 == nil {
		return nil, fmt.Errorf("%w: %w", ErrNoInterface, errors.Join(append(errs4, errs6...)...))
	}
	r.wg.Add(1)
	go r.send()
	receive := func(d mcast.Datagram) { r.receive(d.B, d.From, d.Dst, d.IfIndex) }
	if r.v4 != nil {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			mcast.Read4(r.v4, MaxMessage+1, receive)
		}()
	}
	if r.v6 != nil {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			mcast.Read6(r.v6, MaxMessage+1, receive)
		}()
	}
	r.multicast(func(ifIndex int, v6 bool) []byte { return Hello(o.Target(ifIndex, v6), r.next()) })
	return r, nil
}

// next returns the AppSequence of the next message sent.
func (r *Responder) next() Sequence {
	r.seqMu.Lock()
	defer r.seqMu.Unlock()
	r.seq.MessageNumber++
	return r.seq
}

// multicast sends one message on every interface, over IPv4 and IPv6.
func (r *Responder) multicast(build func(ifIndex int, v6 bool) []byte) {
	for _, ifi := range r.o.Interfaces {
		if r.v4 != nil {
			r.v4.WriteTo(build(ifi.Index, false), &ipv4.ControlMessage{IfIndex: ifi.Index}, &net.UDPAddr{IP: GroupV4.AsSlice(), Port: Port})
		}
		if r.v6 != nil {
			r.v6.WriteTo(build(ifi.Index, true), &ipv6.ControlMessage{IfIndex: ifi.Index}, &net.UDPAddr{IP: GroupV6.AsSlice(), Port: Port})
		}
	}
}

// Close sends Bye, stops answering and waits for its goroutines. It is
// safe to call twice.
func (r *Responder) Close() {
	r.once.Do(func() {
		r.multicast(func(ifIndex int, v6 bool) []byte { return Bye(r.o.Target(ifIndex, v6), r.next()) })
		close(r.done)
		if r.v4 != nil {
			r.v4.Close()
		}
		if r.v6 != nil {
			r.v6.Close()
		}
		r.wg.Wait()
	})
}

// Stats returns the counters.
func (r *Responder) Stats() Stats {
	s := &r.stats
	return Stats{
		Received: s.received.Load(), Probes: s.probes.Load(), Answered: s.answered.Load(),
		NoMatch: s.noMatch.Load(), Ignored: s.ignored.Load(), Malformed: s.malformed.Load(),
		Limited: s.limited.Load(), Oversize: s.oversize.Load(), Duplicates: s.duplicates.Load(),
	}
}

// receive handles one datagram from the network.
func (r *Responder) receive(pkt []byte, from netip.AddrPort, dst netip.Addr, ifIndex int) {
	if !r.ifaces[ifIndex] {
		return
	}
	r.stats.received.Add(1)
	v6 := from.Addr().Is6()
	b, id, why := r.answer(pkt, ifIndex, v6)
	if b == nil {
		r.count(why)
		return
	}
	r.mu.Lock()
	// a probe sent over IPv4 and IPv6, or on two interfaces, is answered
	// on each; a repeat on the same one is not.
	dup := r.recent.seen(fmt.Sprintf("%d/%t/%s", ifIndex, v6, id))
	ok := !dup && r.lim.Allow(time.Now(), from.Addr())
	r.mu.Unlock()
	switch {
	case dup:
		r.stats.duplicates.Add(1)
		return
	case !ok:
		r.stats.limited.Add(1)
		return
	}
	due := time.Now()
	if dst.IsMulticast() {
		due = due.Add(rand.N(r.o.MaxDelay))
	}
	select {
	case r.queue <- reply{b: b, to: from, ifIndex: ifIndex, due: due}:
	default:
		r.stats.limited.Add(1)
	}
}

// Why a datagram got no reply.
type reason int

const (
	answered reason = iota
	malformed
	ignored
	noMatch
	oversize
)

func (r *Responder) count(why reason) {
	switch why {
	case malformed:
		r.stats.malformed.Add(1)
	case ignored:
		r.stats.ignored.Add(1)
	case noMatch:
		r.stats.probes.Add(1)
		r.stats.noMatch.Add(1)
	case oversize:
		r.stats.probes.Add(1)
		r.stats.oversize.Add(1)
	}
}

// answer returns the reply to one datagram that arrived on ifIndex, with
// the probe's MessageID, or nil and why not. It applies every rule but
// the rate limits: it is what the fuzz test drives.
func (r *Responder) answer(pkt []byte, ifIndex int, v6 bool) ([]byte, string, reason) {
	if len(pkt) > MaxMessage {
		return nil, "", malformed
	}
	m, err := Parse(pkt)
	if err != nil {
		return nil, "", malformed
	}
	if m.Action != ActionProbe {
		return nil, "", ignored
	}
	if m.MessageID == "" || len(m.MessageID) > 256 {
		return nil, "", malformed
	}
	t := r.o.Target(ifIndex, v6)
	if !m.MatchesTarget(t.Types, t.Scopes) {
		return nil, "", noMatch
	}
	limit := r.o.MaxReplyFactor * len(pkt)
	seq := r.next()
	b := ProbeMatches(t, m.MessageID, seq, true)
	if len(b) > limit {
		b = ProbeMatches(t, m.MessageID, seq, false)
	}
	if len(b) > limit {
		return nil, "", oversize
	}
	r.stats.probes.Add(1)
	return b, m.MessageID, answered
}

// send writes queued replies when they are due.
func (r *Responder) send() {
	defer r.wg.Done()
	for {
		var rp reply
		select {
		case <-r.done:
			return
		case rp = <-r.queue:
		}
		if d := time.Until(rp.due); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-r.done:
				t.Stop()
				return
			case <-t.C:
			}
		}
		var err error
		if rp.to.Addr().Is4() {
			_, err = r.v4.WriteTo(rp.b, &ipv4.ControlMessage{IfIndex: rp.ifIndex}, net.UDPAddrFromAddrPort(rp.to))
		} else {
			_, err = r.v6.WriteTo(rp.b, &ipv6.ControlMessage{IfIndex: rp.ifIndex}, net.UDPAddrFromAddrPort(rp.to))
		}
		if err != nil {
			r.o.Logger.Debug("wsd: reply not sent", "to", rp.to, "err", err)
			continue
		}
		r.stats.answered.Add(1)
	}
}
