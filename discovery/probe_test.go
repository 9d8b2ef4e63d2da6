package discovery

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// claimResponse is another host's response with rrs, from port 5353.
func claimResponse(rrs ...dns.RR) []byte {
	m := new(dns.Msg)
	m.Response, m.Authoritative = true, true
	m.Answer = rrs
	b, err := m.Pack()
	if err != nil {
		panic(err)
	}
	return b
}

// otherProbe is another host's probe for name, claiming rrs.
func otherProbe(name string, rrs ...dns.RR) []byte {
	return question(name, dns.TypeANY, qu, func(m *dns.Msg) { m.Ns = rrs })
}

func srv(name, target string) *dns.SRV {
	return &dns.SRV{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeSRV, Class: dns.ClassINET, Ttl: hostTTL}, Port: 8443, Target: target}
}

// TestResponderProbesBeforeAnnouncing: a new name is announced only
// after three probes 250 ms apart, which start after a random 0–250 ms
// (RFC 6762 §8.1); until then camd answers nothing about it.
func TestResponderProbesBeforeAnnouncing(t *testing.T) {
	r := newResponder()
	var asked [2]time.Duration
	r.delay = func(lo, hi time.Duration) time.Duration {
		asked = [2]time.Duration{lo, hi}
		return 100 * time.Millisecond
	}
	if out := r.setLinks(t0, []link{testLink}, testSvc); len(out) != 0 {
		t.Fatalf("%d packets at once: announced before probing", len(out))
	}
	if asked != [2]time.Duration{0, probeWait} {
		t.Errorf("first probe delayed by a random time in [%v, %v), want [0, 250ms)", asked[0], asked[1])
	}
	if want := t0.Add(100 * time.Millisecond); !r.next().Equal(want) {
		t.Fatalf("first probe at %v, want %v", r.next(), want)
	}
	// While probing, a question for the name draws nothing.
	for _, q := range [][]byte{question(serviceName, dns.TypePTR), question(serviceName, dns.TypePTR, qu)} {
		if out := r.handle(t0.Add(50*time.Millisecond), q, onLink4, groupV4, eth0); len(out) != 0 || len(r.pending) != 0 {
			t.Fatalf("a question answered while probing")
		}
	}
	r.due(r.next()) // the first probe
	if out := r.handle(t0.Add(150*time.Millisecond), question(serviceName, dns.TypePTR, qu), onLink4, ours4, eth0); len(out) != 0 || len(r.pending) != 0 {
		t.Fatal("a direct question answered while probing")
	}
	// Back to the first probe, to check them all.
	r = newResponder()
	r.delay = func(lo, hi time.Duration) time.Duration { return 100 * time.Millisecond }
	r.setLinks(t0, []link{testLink}, testSvc)
	if at := probeThrough(t, r, testSvc.instance); !at.Equal(t0.Add(850 * time.Millisecond)) {
		t.Errorf("announced at +%v, want +850ms", at.Sub(t0))
	}
	if r.stats.Probes != 6 {
		t.Errorf("%d probes counted, want 6", r.stats.Probes)
	}
	flushAll(r, t0.Add(5*time.Second)) // the repeated announcements
	now := t0.Add(10 * time.Second)
	r.handle(now, question(serviceName, dns.TypePTR), onLink4, groupV4, eth0)
	if len(flushAll(r, now.Add(time.Second))) != 1 {
		t.Error("not answered once announced")
	}
	// A change of the TXT record (a name camd holds) is announced at once.
	paired := testSvc
	paired.txt = Info{ID: "ABCDEFGHIJKLMNOP", Model: "sim", Firmware: "1.2.3", Paired: true}.TXT()
	if out := r.setLinks(now.Add(2*time.Second), []link{testLink}, paired); len(out) != 2 {
		t.Errorf("%d packets for a new TXT, want an announcement at once", len(out))
	}
}

// TestResponderProbeConflict: while camd probes, another host's response
// with a record of the name, of any type, takes the name: camd sends
// nothing more for it and asks its owner for the next name, which it
// probes for in turn. What is no conflict does not stop the probes.
func TestResponderProbeConflict(t *testing.T) {
	const name = `Front\ Door._camd._tcp.local.`
	taken := claimResponse(&dns.TXT{Hdr: dns.RR_Header{Name: `front\ door._camd._tcp.local.`, Rrtype: dns.TypeTXT, Class: dns.ClassINET | flushBit, Ttl: otherTTL}, Txt: []string{"id=OTHER"}})
	newProbing := func() *responder {
		r := newResponder()
		r.delay = func(lo, hi time.Duration) time.Duration { return lo }
		r.setLinks(t0, []link{testLink}, testSvc)
		return r
	}

	r := newProbing()
	r.handle(t0, taken, onLink4, groupV4, eth0)
	if r.takeRename() {
		t.Fatal("a response before the first probe went taken for a conflict")
	}
	for _, tc := range []struct {
		what string
		pkt  []byte
		src  netip.AddrPort
		dst  netip.Addr
	}{
		{"our own records looped back", claimResponse(r.links[eth0].recs[1].rr, r.links[eth0].recs[2].rr), onLink4, groupV4},
		{"our own probe looped back", r.probe(r.links[eth0])[0].b, onLink4, groupV4},
		{"a goodbye", srvResponse(name, "camd-zzzzzzzz.local.", 0), onLink4, groupV4},
		{"another name", srvResponse(`Back\ Door._camd._tcp.local.`, "camd-zzzzzzzz.local.", 120), onLink4, groupV4},
		{"a response from another port", taken, netip.MustParseAddrPort("10.0.0.2:40000"), groupV4},
		{"a response to camd's address from off-link", taken, offLink4, ours4},
	} {
		r := newProbing()
		r.due(t0)
		r.handle(t0.Add(10*time.Millisecond), tc.pkt, tc.src, tc.dst, eth0)
		flushAll(r, t0.Add(time.Second))
		if r.takeRename() || r.links[eth0].state != announced {
			t.Errorf("%s taken for a conflict", tc.what)
		}
	}

	for _, tc := range []struct {
		what string
		pkt  []byte
		src  netip.AddrPort
		dst  netip.Addr
	}{
		{"a TXT, multicast", taken, onLink4, groupV4},
		{"an SRV, unicast from on-link", srvResponse(name, "camd-00000000.local.", 120), onLink6, netip.MustParseAddr("fd00::1")},
		{"an A record under the instance name", claimResponse(&dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 120}, A: net.IPv4(10, 0, 0, 99)}), linkLocal, groupV6},
	} {
		t.Run(tc.what, func(t *testing.T) {
			r := newProbing()
			r.due(t0)
			now := t0.Add(300 * time.Millisecond)
			r.due(r.next()) // second probe
			r.handle(now, tc.pkt, tc.src, tc.dst, eth0)
			if !r.takeRename() || r.stats.Conflicts != 1 {
				t.Fatal("no rename asked for a name another host holds")
			}
			if !r.next().IsZero() {
				t.Fatalf("something still to send at %v for a lost name", r.next())
			}
			// More claims for the lost name change nothing.
			r.handle(now.Add(time.Millisecond), tc.pkt, tc.src, tc.dst, eth0)
			if r.takeRename() {
				t.Fatal("a second rename asked for the same lost name")
			}
			// The same name again (the owner's update raced the rename):
			// still lost.
			if out := r.setLinks(now.Add(2*time.Millisecond), []link{testLink}, testSvc); len(out) != 0 || !r.next().IsZero() {
				t.Fatalf("a lost name probed or announced again: %d packets", len(out))
			}
			// The next name: probed for, with no goodbye for a name never
			// announced.
			svc := testSvc
			svc.instance = "Front Door (2)"
			if out := r.setLinks(now.Add(3*time.Millisecond), []link{testLink}, svc); len(out) != 0 {
				t.Fatalf("%d packets for a name never announced", len(out))
			}
			probeThrough(t, r, svc.instance)
			if out := r.close(); len(out) != 2 {
				t.Fatalf("close sent %d packets", len(out))
			}
		})
	}
}

// TestResponderSimultaneousProbes: another host probing for the same
// name at the same time (§8.2): the host whose records sort later wins;
// the other probes again a second later.
func TestResponderSimultaneousProbes(t *testing.T) {
	const name = `Front\ Door._camd._tcp.local.`
	for _, tc := range []struct {
		what   string
		target string // of the other host's SRV (with camd's TXT)
		wins   bool
	}{
		{"their records sort later", "camd-zzzzzzzz.local.", false},
		{"theirs sort first", "camd-00000000.local.", true},
		{"camd's own probe looped back", "camd-abcdefgh.local.", true},
	} {
		t.Run(tc.what, func(t *testing.T) {
			r := newResponder()
			r.delay = func(lo, hi time.Duration) time.Duration { return lo }
			r.setLinks(t0, []link{testLink}, testSvc)
			r.due(t0)
			txt := r.links[eth0].claim()[1]
			now := t0.Add(100 * time.Millisecond)
			r.handle(now, otherProbe(name, srv(name, tc.target), txt), onLink4, groupV4, eth0)
			if r.takeRename() {
				t.Fatal("a simultaneous probe asked for a rename")
			}
			if tc.wins {
				if !r.next().Equal(t0.Add(probeInterval)) {
					t.Fatalf("next probe at %v, want the usual", r.next())
				}
				return
			}
			if want := now.Add(tieBreakWait); !r.next().Equal(want) {
				t.Fatalf("after losing the tie-break, next probe at %v, want %v", r.next(), want)
			}
			if at := probeThrough(t, r, testSvc.instance); !at.Equal(now.Add(tieBreakWait + 3*probeInterval)) {
				t.Errorf("announced at %v", at)
			}
		})
	}
	// Records compare by class, type, then rdata; a longer list wins.
	a, b := srv(name, "a.local."), srv(name, "b.local.")
	txt := &dns.TXT{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeTXT, Class: dns.ClassINET}, Txt: []string{"z"}}
	for _, tc := range []struct {
		ours, theirs []dns.RR
		want         int
	}{
		{[]dns.RR{a}, []dns.RR{b}, -1},
		{[]dns.RR{b}, []dns.RR{a}, 1},
		{[]dns.RR{a, txt}, []dns.RR{txt, a}, 0},
		{[]dns.RR{b}, []dns.RR{txt, a}, 1},    // TXT (16) sorts before SRV (33)
		{[]dns.RR{txt}, []dns.RR{txt, a}, -1}, // a prefix sorts first
	} {
		if got := compareClaims(tc.ours, tc.theirs); got != tc.want {
			t.Errorf("compareClaims(%v, %v) = %d, want %d", tc.ours, tc.theirs, got, tc.want)
		}
	}
}

// TestResponderSlowsProbingUnderConflicts: a neighbour answers every
// probe with a conflicting record. camd renames and probes again at once
// for the first 15 conflicts, then (15 within 10 s) waits 5 s between
// probe attempts (§8.1) for as long as the conflicts go on; once they
// stop, the next name is claimed; 10 s without a conflict and probing is
// quick again.
func TestResponderSlowsProbingUnderConflicts(t *testing.T) {
	r := newResponder()
	r.delay = func(lo, hi time.Duration) time.Duration { return lo }
	svc := testSvc
	now := t0
	var starts []time.Time
	probes := map[int]int{} // probe packets per second since t0
	attempt := func(hostile bool) time.Time {
		t.Helper()
		svc.instance = fmt.Sprintf("Cam %d", len(starts)+1)
		for _, o := range r.setLinks(now, []link{testLink}, svc) {
			if m := unpack(t, o.b); len(m.Answer) == 0 || m.Answer[0].Header().Ttl != 0 {
				t.Fatalf("%s announced before probing:\n%v", svc.instance, m)
			}
		}
		start := r.next()
		starts = append(starts, start)
		if !hostile {
			return probeThrough(t, r, svc.instance)
		}
		out := r.due(start)
		probes[int(start.Sub(t0)/time.Second)] += len(out)
		name := canonical(svc.instance + "." + serviceName)
		now = start.Add(2 * time.Millisecond)
		r.handle(now, srvResponse(name, "evil.local.", 120), onLink4, groupV4, eth0)
		if !r.takeRename() {
			t.Fatalf("attempt %d: no rename", len(starts))
		}
		return now
	}
	for range 20 {
		attempt(true)
	}
	for i := 1; i < len(starts); i++ {
		gap := starts[i].Sub(starts[i-1])
		switch {
		case i < maxConflicts && gap > 10*time.Millisecond:
			t.Errorf("attempt %d waited %v after the last, before 15 conflicts", i+1, gap)
		case i >= maxConflicts && gap < slowProbeGap:
			t.Errorf("attempt %d came %v after the last, after %d conflicts within 10 s", i+1, gap, i)
		}
	}
	if !r.takeSlowed() || r.takeSlowed() {
		t.Error("the slow-down was not reported (once)")
	}
	for s := 1; s <= int(starts[len(starts)-1].Sub(t0)/time.Second); s++ {
		if probes[s] > 2 {
			t.Errorf("%d probe packets in second %d, after the slow-down", probes[s], s)
		}
	}
	t.Logf("20 attempts under attack over %v; probe packets per second: %v", starts[len(starts)-1].Sub(t0), probes)

	// The neighbour stops: the next attempt, 5 s after the last, claims
	// its name.
	last := starts[len(starts)-1]
	claimed := attempt(false)
	if starts[len(starts)-1].Sub(last) != slowProbeGap {
		t.Errorf("first free attempt %v after the last, want %v", starts[len(starts)-1].Sub(last), slowProbeGap)
	}
	t.Logf("claimed %q %v after the first attempt", svc.instance, claimed.Sub(t0))

	// 10 s without a conflict: a conflict with the name announced, and
	// the next name is probed for at once.
	now = claimed.Add(conflictWindow)
	conflict := now
	r.handle(now, srvResponse(canonical(svc.instance+"."+serviceName), "zzz.local.", 120), onLink4, groupV4, eth0)
	if !r.takeRename() {
		t.Fatal("no rename for a conflict with an announced name")
	}
	attempt(true)
	if gap := starts[len(starts)-1].Sub(conflict); gap != 0 {
		t.Errorf("10 s after the last conflict, the next attempt waited %v", gap)
	}
}
