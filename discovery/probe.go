package discovery

import (
	"bytes"
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Probing (RFC 6762 §8): before camd announces an instance name on a
// link, it asks three times whether another host holds it; a host that
// answers takes the name from camd, whose owner picks the next one. These
// are the responder's methods for it; setLinks starts a probe attempt and
// due sends the probes.

// probeStart is when a probe attempt asked for at now, after wait, may
// start: at least slowProbeGap after the last one while conflicts come
// too often (§8.1).
func (r *responder) probeStart(now time.Time, wait time.Duration) time.Time {
	at := now.Add(wait)
	if now.Before(r.slowUntil) && at.Before(r.lastAttempt.Add(slowProbeGap)) {
		at = r.lastAttempt.Add(slowProbeGap)
	}
	r.lastAttempt = at
	return at
}

// noteConflict counts a conflict that costs a probe attempt: a name lost
// or a simultaneous probe lost. The maxConflicts-th within
// conflictWindow, and every one after it until conflictWindow passes
// without one, keeps probing slow.
func (r *responder) noteConflict(now time.Time) {
	r.conflicts = append(r.conflicts, now)
	if len(r.conflicts) > maxConflicts {
		r.conflicts = slices.Delete(r.conflicts, 0, len(r.conflicts)-maxConflicts)
	}
	slow := now.Before(r.slowUntil)
	if slow || (len(r.conflicts) == maxConflicts && now.Sub(r.conflicts[0]) <= conflictWindow) {
		r.slowNoted = r.slowNoted || !slow
		r.slowUntil = now.Add(conflictWindow)
	}
}

// takeSlowed reports, and clears, whether probing slowed down since the
// last call.
func (r *responder) takeSlowed() bool {
	slowed := r.slowNoted
	r.slowNoted = false
	return slowed
}

// claim lists the records camd claims under its instance name (SRV and
// TXT) as a probe carries them: without the cache-flush bit.
func (l *rlink) claim() []dns.RR {
	var rrs []dns.RR
	for _, rec := range l.recs {
		if rec.kind == kindSRV || rec.kind == kindTXT {
			rrs = append(rrs, withTTL(rec.rr, rec.rr.Header().Ttl, true))
		}
	}
	return rrs
}

// probe multicasts l's probe (§8.1) over IPv4 and IPv6: a question of
// type ANY for the instance name, asking for a unicast reply, with the
// records camd claims in the authority section (for §8.2's tie-break).
func (r *responder) probe(l *rlink) []outPacket {
	m := new(dns.Msg)
	m.Compress = true
	m.Question = []dns.Question{{Name: l.instance(), Qtype: dns.TypeANY, Qclass: dns.ClassINET | flushBit}}
	m.Ns = l.claim()
	b, err := m.Pack()
	if err != nil || len(b) > maxMulticast {
		return nil
	}
	r.stats.Probes += 2
	return []outPacket{{ifIndex: l.Iface.Index, b: b}, {ifIndex: l.Iface.Index, v6: true, b: b}}
}

// whileProbing looks at a datagram that came in on l while it probes
// for its instance name. Another host's response (from port 5353, and
// from on-link if sent to camd's address) with a record of that name, of
// any type, other than one of ours, means the name is taken (§8.1): camd
// gives way, and its owner picks the next name (renameAsked). Another
// host's probe for the name is a simultaneous probe (§8.2): the records
// in the two probes' authority sections are compared, and if camd's sort
// first, it probes again after tieBreakWait. Neither counts before the
// first probe of the attempt went (it may answer an older one).
func (r *responder) whileProbing(now time.Time, l *rlink, q *dns.Msg, legacy, offLink bool) {
	if l.state != probing || l.probes == 0 || legacy || offLink || q.Opcode != dns.OpcodeQuery || q.Rcode != dns.RcodeSuccess {
		return
	}
	name := l.instance()
	if q.Response {
		for _, rr := range slices.Concat(q.Answer[:min(len(q.Answer), maxKnown)], q.Extra[:min(len(q.Extra), maxKnown)]) {
			if rr.Header().Ttl == 0 || !strings.EqualFold(rr.Header().Name, name) ||
				slices.ContainsFunc(l.recs, func(rec ownRecord) bool { return sameRecord(rr, rec.rr) }) {
				continue
			}
			r.stats.Conflicts++
			r.noteConflict(now)
			r.renameAsked = true
			for _, o := range r.links {
				if o.state == probing && strings.EqualFold(o.instance(), name) {
					o.state = lost
				}
			}
			return
		}
		return
	}
	var theirs []dns.RR
	for _, rr := range q.Ns[:min(len(q.Ns), maxKnown)] {
		if strings.EqualFold(rr.Header().Name, name) {
			theirs = append(theirs, rr)
		}
	}
	if len(theirs) > 0 && compareClaims(l.claim(), theirs) < 0 {
		r.stats.Conflicts++
		r.noteConflict(now)
		l.probes, l.probeAt = 0, r.probeStart(now, tieBreakWait)
	}
}

// compareClaims compares two hosts' records for one name as §8.2 does:
// each set sorted by class (without the cache-flush bit), type and rdata
// (raw bytes, names uncompressed), then compared pair by pair; the first
// difference decides, and a set that runs out first sorts first. It
// returns -1 if ours sort first (camd loses), 0 if the sets are the same
// (camd's own probe looped back), +1 otherwise.
func compareClaims(ours, theirs []dns.RR) int {
	a, b := sortedClaims(ours), sortedClaims(theirs)
	for i := range min(len(a), len(b)) {
		if c := compareClaim(a[i], b[i]); c != 0 {
			return c
		}
	}
	return cmp.Compare(len(a), len(b))
}

type claimed struct {
	class, rrtype uint16
	rdata         []byte
}

func compareClaim(x, y claimed) int {
	return cmp.Or(cmp.Compare(x.class, y.class), cmp.Compare(x.rrtype, y.rrtype), bytes.Compare(x.rdata, y.rdata))
}

func sortedClaims(rrs []dns.RR) []claimed {
	out := make([]claimed, 0, len(rrs))
	for _, rr := range rrs {
		rr = dns.Copy(rr)
		buf := make([]byte, dns.Len(rr))
		end, err := dns.PackRR(rr, buf, 0, nil, false)
		if err != nil {
			continue
		}
		h := rr.Header()
		out = append(out, claimed{h.Class &^ flushBit, h.Rrtype, buf[end-int(h.Rdlength) : end]})
	}
	slices.SortFunc(out, compareClaim)
	return out
}
