package discovery

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/camd-project/camd/discovery/internal/ratelimit"
)

// Bounds and timings of the mDNS responder. RFC 6762 sets most of them;
// docs/discovery.md lists them.
const (
	mdnsPort     = 5353
	maxDatagram  = 9000 // §17: the largest mDNS message; a larger datagram is dropped unread
	maxQuestions = 32   // questions looked at in one query
	maxKnown     = 64   // known answers (or probe records) looked at in one query
	// replyFactor bounds a unicast reply by the query that asked for it:
	// at most 3 × its size. A larger one goes by multicast instead (a
	// legacy query gets a truncated reply).
	replyFactor = 3
	// maxMulticast keeps a multicast response within one Ethernet frame.
	maxMulticast = 1400
	// multicastGap: a record is multicast at most once a second on an
	// interface (§6), probeGap when defending it against a probe.
	multicastGap = time.Second
	probeGap     = 250 * time.Millisecond
	// Unicast replies: at most 2/s (burst 4) to one address, 10/s (burst
	// 20) in all; at most maxSources addresses remembered.
	unicastRate, unicastBurst           = 2, 4
	unicastTotalRate, unicastTotalBurst = 10, 20
	maxSources                          = 256
	// maxTruncated bounds the queriers whose known answers are awaited
	// (§7.2).
	maxTruncated = 64
	// renameGap is the least time between two renames after conflicts
	// with a name already announced.
	renameGap = time.Second
	// Probing (§8.1): after a random delay of up to probeWait, probeCount
	// probes probeInterval apart; the instance name is camd's
	// probeInterval after the last. A host that loses a simultaneous
	// probe (§8.2) probes again after tieBreakWait. Once maxConflicts
	// conflicts came within conflictWindow, probe attempts start at least
	// slowProbeGap apart, until conflictWindow passes without a conflict.
	probeWait      = 250 * time.Millisecond
	probeInterval  = 250 * time.Millisecond
	probeCount     = 3
	tieBreakWait   = time.Second
	maxConflicts   = 15
	conflictWindow = 10 * time.Second
	slowProbeGap   = 5 * time.Second
)

// §6: an answer that other hosts may give too (a shared record: PTR)
// waits 20–120 ms, so that answers to many queries go out as one; §7.2: a
// query whose known answers continue in more packets (TC bit) waits
// 400–500 ms for them.
var (
	sharedDelay    = [2]time.Duration{20 * time.Millisecond, 120 * time.Millisecond}
	truncatedDelay = [2]time.Duration{400 * time.Millisecond, 500 * time.Millisecond}
	// announceRepeats are when an announcement is repeated (§8.3: at
	// least twice, one second apart, the interval doubling).
	announceRepeats = []time.Duration{time.Second, 3 * time.Second}
)

var (
	groupV4 = netip.MustParseAddr("224.0.0.251")
	groupV6 = netip.MustParseAddr("ff02::fb")
)

// responderStats counts what the responder received and did.
type responderStats struct {
	Received     int // datagrams on a chosen interface
	Malformed    int // not parsed, or larger than maxDatagram
	Ignored      int // responses, other opcodes, other groups, invalid legacy queries
	OffLink      int // unicast-destination or legacy queries from an off-link address
	NotOurs      int // queries with no question about our records
	KnownAnswers int // answers left out because the query listed them
	Multicast    int // multicast responses and announcements sent (per interface and IP version)
	Unicast      int // unicast replies sent
	Limited      int // unicast replies not sent: rate limit
	Oversize     int // unicast replies not sent: larger than replyFactor × the query
	Truncated    int // legacy replies sent truncated (TC, no answers)
	Conflicts    int // responses or probes from another host claiming our instance name
	Probes       int // probes sent (per interface and IP version)
}

// outPacket is a datagram to send on interface ifIndex: to the mDNS
// group of its IP version when to is the zero value.
type outPacket struct {
	ifIndex int
	v6      bool
	to      netip.AddrPort
	b       []byte
}

type sendKey struct {
	ifIndex int
	v6      bool
}

type lastKey struct {
	sendKey
	rec string
}

// linkState is where a link is in claiming the instance name.
type linkState int

const (
	// probing: the records are not camd's yet (§8.1): nothing is
	// answered or announced on the link until the probes are over.
	probing linkState = iota
	// announced: the records are camd's, answered and defended.
	announced
	// lost: another host claimed the name while camd probed for it;
	// nothing is sent until the owner gives a new name.
	lost
)

// rlink is a link the responder answers on and what it says there.
type rlink struct {
	link
	recs  []ownRecord
	state linkState
	// probing: when the next probe goes, or, once probeCount went, when
	// the name is camd's; probes counts those sent in this attempt.
	probeAt    time.Time
	probes     int
	announceAt []time.Time // repeats still to send
}

// pendingReply is the multicast response a link and IP version owe.
type pendingReply struct {
	due     time.Time
	answers map[int]bool // indexes into the link's records
	probe   bool
}

type truncatedQuery struct {
	key   sendKey
	until time.Time
}

// responder is the mDNS responder's logic, without sockets or clock: it
// takes datagrams and the time, and returns datagrams to send. It is not
// safe for concurrent use.
type responder struct {
	links     map[int]*rlink
	last      map[lastKey]time.Time // when each record was last multicast
	pending   map[sendKey]*pendingReply
	truncated map[netip.Addr]truncatedQuery
	limit     *ratelimit.Limiter // unicast replies
	// delay picks a random delay in [lo, hi).
	delay func(lo, hi time.Duration) time.Duration
	stats responderStats
	// renameAsked: another host claims our instance name and wins the
	// tie-break; the owner of the responder should pick another name.
	renameAsked bool
	// lost is that instance name: the PTR to it is now the other host's
	// too, so no goodbye goes out for it.
	lost       string
	lastRename time.Time
	// conflicts are the times of the latest conflicts (at most
	// maxConflicts); until slowUntil, probe attempts start slowProbeGap
	// apart, the last at lastAttempt. slowNoted: probing just slowed down.
	conflicts   []time.Time
	slowUntil   time.Time
	lastAttempt time.Time
	slowNoted   bool
}

func newResponder() *responder {
	return &responder{
		links:     map[int]*rlink{},
		last:      map[lastKey]time.Time{},
		pending:   map[sendKey]*pendingReply{},
		truncated: map[netip.Addr]truncatedQuery{},
		delay:     func(lo, hi time.Duration) time.Duration { return lo + rand.N(hi-lo) },
		limit: ratelimit.New(ratelimit.Options{
			PerAddrRate: unicastRate, PerAddrBurst: unicastBurst,
			Rate: unicastTotalRate, Burst: unicastTotalBurst,
			MaxAddrs: maxSources,
		}),
	}
}

// setLinks makes the responder answer for svc on links. An instance name
// is probed for (§8.1) before it is announced on a link: on a new link,
// and when the name changes (with goodbyes at once for what the link
// announced under the old one). A link that keeps its name and whose
// records changed gets an announcement at once (§8.4, with goodbyes for
// the records it no longer has); an announcement is repeated after 1 and
// 3 s. A link no longer in the list gets goodbyes.
func (r *responder) setLinks(now time.Time, links []link, svc service) []outPacket {
	var out []outPacket
	var start time.Time // of the probe attempt the links that need one share
	next := map[int]*rlink{}
	for _, ln := range links {
		idx := ln.Iface.Index
		nl := &rlink{link: ln, recs: svc.records(ln.Addrs)}
		next[idx] = nl
		old := r.links[idx]
		sameName := old != nil && strings.EqualFold(old.instance(), nl.instance())
		switch {
		case sameName && old.state != announced:
			// still probing for this name, or lost it: carry on
			nl.state, nl.probeAt, nl.probes = old.state, old.probeAt, old.probes
		case sameName && sameKeys(old.recs, nl.recs):
			nl.recs, nl.state, nl.announceAt = old.recs, announced, old.announceAt
		case sameName:
			r.dropPending(idx)
			nl.state = announced
			out = append(out, r.announce(now, nl, r.byes(old, nl))...)
			for _, d := range announceRepeats {
				nl.announceAt = append(nl.announceAt, now.Add(d))
			}
		default:
			r.dropPending(idx)
			if old != nil && old.state == announced {
				out = append(out, r.goodbye(old, r.byes(old, nl))...)
			}
			if start.IsZero() {
				start = r.probeStart(now, r.delay(0, probeWait))
			}
			nl.state, nl.probeAt = probing, start
		}
	}
	for idx, old := range r.links {
		if next[idx] == nil {
			if old.state == announced {
				out = append(out, r.goodbye(old, old.recs)...)
			}
			r.dropPending(idx)
		}
	}
	r.links = next
	r.lost = ""
	// forget when records that are gone were multicast
	for k := range r.last {
		l := r.links[k.ifIndex]
		if l == nil || !slices.ContainsFunc(l.recs, func(rec ownRecord) bool { return rec.key == k.rec }) {
			delete(r.last, k)
		}
	}
	return out
}

// byes lists the records old announced that nl does not have, less the
// PTR to an instance name another host won (it announces that PTR too).
func (r *responder) byes(old, nl *rlink) []ownRecord {
	var bye []ownRecord
	for _, rec := range old.recs {
		if ptr, ok := rec.rr.(*dns.PTR); ok && r.lost != "" && strings.EqualFold(ptr.Ptr, r.lost) {
			continue
		}
		if !slices.ContainsFunc(nl.recs, func(n ownRecord) bool { return n.key == rec.key }) {
			bye = append(bye, rec)
		}
	}
	return bye
}

func sameKeys(a, b []ownRecord) bool {
	return slices.EqualFunc(a, b, func(x, y ownRecord) bool { return x.key == y.key && x.rr.Header().Ttl == y.rr.Header().Ttl })
}

func (r *responder) dropPending(ifIndex int) {
	delete(r.pending, sendKey{ifIndex, false})
	delete(r.pending, sendKey{ifIndex, true})
}

// close says goodbye on every link where it announced, and forgets them.
func (r *responder) close() []outPacket {
	var out []outPacket
	for _, l := range r.links {
		if l.state == announced {
			out = append(out, r.goodbye(l, l.recs)...)
		}
	}
	clear(r.links)
	clear(r.pending)
	return out
}

// announce multicasts every record of l, with the records in bye at TTL 0
// first, over IPv4 and IPv6.
func (r *responder) announce(now time.Time, l *rlink, bye []ownRecord) []outPacket {
	var rrs []dns.RR
	for _, rec := range bye {
		rrs = append(rrs, withTTL(rec.rr, 0, false))
	}
	for _, rec := range l.recs {
		rrs = append(rrs, rec.rr)
	}
	b := packAnswers(rrs)
	if b == nil && len(bye) > 0 { // too large for one packet: two
		return append(r.send(l, packAnswers(rrs[:len(bye)])), r.announce(now, l, nil)...)
	}
	for _, v6 := range []bool{false, true} {
		key := sendKey{l.Iface.Index, v6}
		for _, rec := range l.recs {
			r.last[lastKey{key, rec.key}] = now
		}
		// what was waiting to be multicast just was
		if p := r.pending[key]; p != nil {
			clear(p.answers)
		}
	}
	return r.send(l, b)
}

// goodbye multicasts recs, records of l, with TTL 0.
func (r *responder) goodbye(l *rlink, recs []ownRecord) []outPacket {
	if len(recs) == 0 {
		return nil
	}
	var rrs []dns.RR
	for _, rec := range recs {
		rrs = append(rrs, withTTL(rec.rr, 0, false))
	}
	return r.send(l, packAnswers(rrs))
}

// send multicasts b on l over IPv4 and IPv6.
func (r *responder) send(l *rlink, b []byte) []outPacket {
	if b == nil {
		return nil
	}
	r.stats.Multicast += 2
	return []outPacket{{ifIndex: l.Iface.Index, b: b}, {ifIndex: l.Iface.Index, v6: true, b: b}}
}

// instance is the instance name l's records are under: the SRV's owner.
func (l *rlink) instance() string {
	for _, rec := range l.recs {
		if rec.kind == kindSRV {
			return rec.rr.Header().Name
		}
	}
	return ""
}

// packAnswers packs an unsolicited response, or returns nil if it does
// not fit in maxMulticast.
func packAnswers(rrs []dns.RR) []byte {
	m := new(dns.Msg)
	m.Response, m.Authoritative, m.Compress = true, true, true
	m.Answer = rrs
	b, err := m.Pack()
	if err != nil || len(b) > maxMulticast {
		return nil
	}
	return b
}

// next is when due should be called next; zero when nothing waits.
func (r *responder) next() time.Time {
	var t time.Time
	earlier := func(c time.Time) {
		if t.IsZero() || c.Before(t) {
			t = c
		}
	}
	for _, l := range r.links {
		if l.state == probing {
			earlier(l.probeAt)
		}
		if len(l.announceAt) > 0 {
			earlier(l.announceAt[0])
		}
	}
	for _, p := range r.pending {
		earlier(p.due)
	}
	return t
}

// due returns what is due at now: probes, and the first announcement
// once they are over; repeated announcements; and multicast responses
// whose delay is over, less the records multicast on that link within the
// last second (those wait until the second is over).
func (r *responder) due(now time.Time) []outPacket {
	var out []outPacket
	for _, l := range r.links {
		if l.state == probing && !l.probeAt.After(now) {
			if l.probes < probeCount {
				l.probes++
				l.probeAt = now.Add(probeInterval)
				out = append(out, r.probe(l)...)
				continue
			}
			l.state = announced
			out = append(out, r.announce(now, l, nil)...)
			for _, d := range announceRepeats {
				l.announceAt = append(l.announceAt, now.Add(d))
			}
			continue
		}
		if len(l.announceAt) > 0 && !l.announceAt[0].After(now) {
			l.announceAt = l.announceAt[1:]
			out = append(out, r.announce(now, l, nil)...)
		}
	}
	for key, p := range r.pending {
		if p.due.After(now) {
			continue
		}
		l := r.links[key.ifIndex]
		if l == nil {
			delete(r.pending, key)
			continue
		}
		gap := multicastGap
		if p.probe {
			gap = probeGap
		}
		var send []int
		var later time.Time
		for i := range p.answers {
			if t, ok := r.last[lastKey{key, l.recs[i].key}]; ok && now.Sub(t) < gap {
				if w := t.Add(gap); later.IsZero() || w.Before(later) {
					later = w
				}
				continue
			}
			send = append(send, i)
			delete(p.answers, i)
		}
		if len(send) > 0 {
			slices.Sort(send)
			if o, ok := r.multicast(now, l, key.v6, send); ok {
				out = append(out, o)
			}
		}
		if len(p.answers) == 0 {
			delete(r.pending, key)
		} else {
			p.due = later
		}
	}
	return out
}

// multicast builds the response carrying answers (and their additional
// records) on l and notes that they were multicast.
func (r *responder) multicast(now time.Time, l *rlink, v6 bool, answers []int) (outPacket, bool) {
	m := new(dns.Msg)
	m.Response, m.Authoritative, m.Compress = true, true, true
	for _, i := range answers {
		m.Answer = append(m.Answer, l.recs[i].rr)
	}
	for len(m.Answer) > 0 {
		b, sent, ok := l.pack(m, l.extras(answers), maxMulticast, nil)
		if !ok {
			m.Answer = m.Answer[:len(m.Answer)-1]
			answers = answers[:len(answers)-1]
			continue
		}
		key := sendKey{l.Iface.Index, v6}
		for _, i := range slices.Concat(answers, sent) {
			r.last[lastKey{key, l.recs[i].key}] = now
		}
		r.stats.Multicast++
		return outPacket{ifIndex: l.Iface.Index, v6: v6, b: b}, true
	}
	return outPacket{}, false
}

// pack packs m, then adds as many of the records extras (indexes into
// l.recs, converted by conv when set) as fit in limit bytes; ok is false
// when m alone does not fit. sent lists the extras included.
func (l *rlink) pack(m *dns.Msg, extras []int, limit int, conv func(dns.RR) dns.RR) (b []byte, sent []int, ok bool) {
	b, err := m.Pack()
	if err != nil || len(b) > limit {
		return nil, nil, false
	}
	for _, i := range extras {
		rr := l.recs[i].rr
		if conv != nil {
			rr = conv(rr)
		}
		m.Extra = append(m.Extra, rr)
		nb, err := m.Pack()
		if err != nil || len(nb) > limit {
			m.Extra = m.Extra[:len(m.Extra)-1]
			continue
		}
		b, sent = nb, append(sent, i)
	}
	return b, sent, true
}

// extras lists the records that go in the additional section with
// answers (RFC 6763 §12, RFC 6762 §6.2), less the answers themselves.
func (l *rlink) extras(answers []int) []int {
	need := map[recordKind]bool{}
	for _, i := range answers {
		switch l.recs[i].kind {
		case kindPTR:
			need[kindSRV], need[kindTXT], need[kindA], need[kindAAAA] = true, true, true, true
		case kindSRV:
			need[kindA], need[kindAAAA] = true, true
		case kindA:
			need[kindAAAA] = true
		case kindAAAA:
			need[kindA] = true
		}
	}
	var out []int
	for i, rec := range l.recs {
		if need[rec.kind] && !slices.Contains(answers, i) {
			out = append(out, i)
		}
	}
	return out
}

// onLink reports whether a is on l's link: link-local, or within a
// prefix of one of l's addresses.
func (l *rlink) onLink(a netip.Addr) bool {
	a = a.WithZone("").Unmap()
	if !a.IsValid() || a.IsUnspecified() || a.IsMulticast() || a.IsLoopback() {
		return false
	}
	if a.IsLinkLocalUnicast() {
		return true
	}
	for _, p := range l.Prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// handle takes one datagram that arrived on interface ifIndex from src,
// sent to dst, and returns the unicast reply to send at once, if any; a
// multicast response is scheduled for due.
//
// Rules (RFC 6762): a query from a port other than 5353 is a legacy one
// (§6.7), answered by unicast only, and only to an on-link address; a
// query sent to a unicast address (§5.5) is answered only if it comes
// from on-link; a query asking for a unicast reply (QU, §5.4) gets one
// only from on-link, only if every answer was multicast within a quarter
// of its TTL, within replyFactor × the query's size and the unicast rate
// limit; otherwise it is answered by multicast, at most once a second per
// record per interface (§6). Known answers are left out (§7.1).
func (r *responder) handle(now time.Time, pkt []byte, src netip.AddrPort, dst netip.Addr, ifIndex int) []outPacket {
	l := r.links[ifIndex]
	if l == nil {
		return nil
	}
	r.stats.Received++
	if len(pkt) > maxDatagram {
		r.stats.Malformed++
		return nil
	}
	var q dns.Msg
	if err := q.Unpack(pkt); err != nil {
		r.stats.Malformed++
		return nil
	}
	from := src.Addr()
	v6 := from.Is6() && !from.Is4In6()
	key := sendKey{ifIndex, v6}
	direct := !dst.IsMulticast()
	legacy := src.Port() != mdnsPort
	if l.state != announced {
		r.whileProbing(now, l, &q, legacy, direct && !l.onLink(from))
		return nil
	}
	switch {
	case q.Response && direct && !l.onLink(from):
		r.stats.OffLink++ // a claim from beyond the link
		return nil
	case q.Response && !legacy && q.Opcode == dns.OpcodeQuery:
		r.checkConflict(now, l, &q, v6)
		return nil
	case q.Response, q.Opcode != dns.OpcodeQuery, q.Rcode != dns.RcodeSuccess:
		r.stats.Ignored++
		return nil
	case !direct && dst != groupV4 && dst != groupV6:
		r.stats.Ignored++ // another group on port 5353
		return nil
	case (direct || legacy) && !l.onLink(from):
		r.stats.OffLink++
		return nil
	case legacy && (len(q.Answer) > 0 || len(q.Ns) > 0):
		r.stats.Ignored++ // a one-shot resolver sends neither
		return nil
	case len(q.Question) == 0:
		r.moreKnownAnswers(now, from, q.Answer)
		return nil
	}
	probe := l.probedBy(q.Ns)
	answers, allQU := r.answers(l, &q)
	if len(answers) == 0 {
		return nil
	}
	if legacy {
		if o, ok := r.legacyReply(now, l, &q, len(pkt), src, answers); ok {
			return []outPacket{o}
		}
		return nil
	}
	if !probe && l.onLink(from) && (direct || (allQU && r.fresh(now, key, l, answers))) {
		if o, ok := r.unicastReply(now, l, &q, len(pkt), src, answers); ok {
			return []outPacket{o}
		}
	}
	r.schedule(now, key, l, answers, probe, q.Truncated)
	if q.Truncated {
		if len(r.truncated) >= maxTruncated {
			clear(r.truncated)
		}
		r.truncated[from] = truncatedQuery{key, now.Add(truncatedDelay[1])}
	}
	return nil
}

// checkConflict looks at a response for another host's SRV record under
// our instance name once it is announced (RFC 6762 §9): two cameras that
// claim one name, as when two LANs are joined, or a host that did not
// probe. It is settled by a tie-break both sides compute alike: the host
// whose SRV target sorts first (case-insensitively) gives way and is
// renamed by its owner (renameAsked), and probes for the new name; the
// other defends its records by multicasting them at once, so that the
// loser hears of the conflict too. Goodbyes (TTL 0) and our own records
// looped back are no conflict.
func (r *responder) checkConflict(now time.Time, l *rlink, q *dns.Msg, v6 bool) {
	var ours *dns.SRV
	mine := -1
	for i, rec := range l.recs {
		if srv, ok := rec.rr.(*dns.SRV); ok {
			ours, mine = srv, i
		}
	}
	if ours == nil {
		r.stats.Ignored++
		return
	}
	for _, rr := range slices.Concat(q.Answer[:min(len(q.Answer), maxKnown)], q.Extra[:min(len(q.Extra), maxKnown)]) {
		theirs, ok := rr.(*dns.SRV)
		if !ok || theirs.Hdr.Ttl == 0 || !strings.EqualFold(theirs.Hdr.Name, ours.Hdr.Name) ||
			strings.EqualFold(theirs.Target, ours.Target) {
			continue
		}
		r.stats.Conflicts++
		if strings.ToLower(ours.Target) < strings.ToLower(theirs.Target) {
			// At most one rename a second (RFC 6762 §9 asks for less
			// after 15 in 10 s): a host that keeps claiming every name
			// cannot make camd spin. The winner's defence of the name
			// taken next, or its next announcement, comes again.
			if now.Sub(r.lastRename) >= renameGap {
				r.renameAsked, r.lost, r.lastRename = true, ours.Hdr.Name, now
				r.noteConflict(now)
			}
		} else {
			r.schedule(now, sendKey{l.Iface.Index, v6}, l, []int{mine}, true, false)
		}
		return
	}
	r.stats.Ignored++
}

// takeRename reports, and clears, whether another host won our instance
// name since the last call.
func (r *responder) takeRename() bool {
	asked := r.renameAsked
	r.renameAsked = false
	return asked
}

// answers lists the records of l that answer q's questions and that q
// does not list as known (with at least half their TTL left, §7.1);
// allQU is whether every question answered asked for a unicast reply.
func (r *responder) answers(l *rlink, q *dns.Msg) (answers []int, allQU bool) {
	allQU = true
	known := q.Answer[:min(len(q.Answer), maxKnown)]
	for _, qq := range q.Question[:min(len(q.Question), maxQuestions)] {
		class := qq.Qclass &^ flushBit
		if class != dns.ClassINET && class != dns.ClassANY {
			continue
		}
		matched := false
		for i, rec := range l.recs {
			h := rec.rr.Header()
			if (qq.Qtype != h.Rrtype && qq.Qtype != dns.TypeANY) || !strings.EqualFold(qq.Name, h.Name) {
				continue
			}
			matched = true
			if isKnown(known, rec.rr) {
				r.stats.KnownAnswers++
				continue
			}
			if !slices.Contains(answers, i) {
				answers = append(answers, i)
			}
		}
		if matched && qq.Qclass&flushBit == 0 {
			allQU = false
		}
	}
	if len(answers) == 0 && !slices.ContainsFunc(q.Question, func(qq dns.Question) bool { return l.owns(qq.Name) }) {
		r.stats.NotOurs++
	}
	slices.Sort(answers)
	return answers, allQU
}

func isKnown(known []dns.RR, rr dns.RR) bool {
	for _, k := range known {
		if sameRecord(k, rr) && k.Header().Ttl >= rr.Header().Ttl/2 {
			return true
		}
	}
	return false
}

// owns reports whether name is the owner of one of l's records.
func (l *rlink) owns(name string) bool {
	return slices.ContainsFunc(l.recs, func(rec ownRecord) bool { return strings.EqualFold(rec.rr.Header().Name, name) })
}

// probedBy reports whether a query's authority records claim one of our
// names: another host probing for it (§8.1), to be answered at once.
func (l *rlink) probedBy(ns []dns.RR) bool {
	for _, rr := range ns[:min(len(ns), maxKnown)] {
		if n := rr.Header().Name; !strings.EqualFold(n, serviceName) && !strings.EqualFold(n, servicesName) && l.owns(n) {
			return true
		}
	}
	return false
}

// fresh reports whether every answer was multicast on key's link within
// a quarter of its TTL: only then may a QU question be answered by
// unicast (§5.4); otherwise the multicast refreshes every cache.
func (r *responder) fresh(now time.Time, key sendKey, l *rlink, answers []int) bool {
	for _, i := range answers {
		t, ok := r.last[lastKey{key, l.recs[i].key}]
		if !ok || now.Sub(t) > time.Duration(l.recs[i].rr.Header().Ttl)*time.Second/4 {
			return false
		}
	}
	return true
}

// unicastReply answers a QU or direct unicast query from an on-link
// address by unicast, if it fits in replyFactor × the query's size and
// the rate limit allows it.
func (r *responder) unicastReply(now time.Time, l *rlink, q *dns.Msg, size int, to netip.AddrPort, answers []int) (outPacket, bool) {
	m := new(dns.Msg)
	m.Id, m.Response, m.Authoritative, m.Compress = q.Id, true, true, true
	for _, i := range answers {
		m.Answer = append(m.Answer, l.recs[i].rr)
	}
	b, _, ok := l.pack(m, l.extras(answers), replyFactor*size, nil)
	if !ok {
		r.stats.Oversize++
		return outPacket{}, false
	}
	if !r.limit.Allow(now, to.Addr()) {
		r.stats.Limited++
		return outPacket{}, false
	}
	r.stats.Unicast++
	return outPacket{ifIndex: l.Iface.Index, v6: to.Addr().Is6(), to: to, b: b}, true
}

// legacyReply answers a one-shot resolver (§6.7): by unicast to its
// address and port, with its query ID and questions, TTLs of at most 10 s
// and no cache-flush bit. If the answers do not fit in replyFactor × the
// query's size, the reply is truncated (TC, questions only).
func (r *responder) legacyReply(now time.Time, l *rlink, q *dns.Msg, size int, to netip.AddrPort, answers []int) (outPacket, bool) {
	conv := func(rr dns.RR) dns.RR { return withTTL(rr, min(rr.Header().Ttl, legacyTTL), true) }
	m := new(dns.Msg)
	m.Id, m.Response, m.Authoritative, m.Compress = q.Id, true, true, true
	m.Question = q.Question
	for _, i := range answers {
		m.Answer = append(m.Answer, conv(l.recs[i].rr))
	}
	limit := replyFactor * size
	b, _, ok := l.pack(m, l.extras(answers), limit, conv)
	if !ok {
		m.Answer, m.Truncated = nil, true
		if b, _, ok = l.pack(m, nil, limit, nil); !ok {
			r.stats.Oversize++
			return outPacket{}, false
		}
		r.stats.Truncated++
	}
	if !r.limit.Allow(now, to.Addr()) {
		r.stats.Limited++
		return outPacket{}, false
	}
	r.stats.Unicast++
	return outPacket{ifIndex: l.Iface.Index, v6: to.Addr().Is6(), to: to, b: b}, true
}

// schedule adds answers to the multicast response key's link owes.
func (r *responder) schedule(now time.Time, key sendKey, l *rlink, answers []int, probe, truncated bool) {
	var d time.Duration
	switch {
	case truncated:
		d = r.delay(truncatedDelay[0], truncatedDelay[1])
	case probe:
	case slices.ContainsFunc(answers, func(i int) bool { k := l.recs[i].kind; return k == kindPTR || k == kindEnum }):
		d = r.delay(sharedDelay[0], sharedDelay[1])
	}
	due := now.Add(d)
	p := r.pending[key]
	if p == nil {
		p = &pendingReply{due: due, answers: map[int]bool{}}
		r.pending[key] = p
	} else if due.Before(p.due) {
		p.due = due
	}
	for _, i := range answers {
		p.answers[i] = true
	}
	p.probe = p.probe || probe
}

// moreKnownAnswers takes the known answers that continue a truncated
// query from the same address (§7.2) and drops them from the response
// it awaits.
func (r *responder) moreKnownAnswers(now time.Time, from netip.Addr, known []dns.RR) {
	t, ok := r.truncated[from]
	if !ok || now.After(t.until) {
		return
	}
	p, l := r.pending[t.key], r.links[t.key.ifIndex]
	if p == nil || l == nil {
		return
	}
	known = known[:min(len(known), maxKnown)]
	for i := range p.answers {
		if isKnown(known, l.recs[i].rr) {
			delete(p.answers, i)
			r.stats.KnownAnswers++
		}
	}
}
