package discovery

import (
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

var (
	t0        = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	testSvc   = service{instance: "Front Door", host: "camd-abcdefgh.local.", port: 8443, txt: Info{ID: "ABCDEFGHIJKLMNOP", Model: "sim", Firmware: "1.2.3"}.TXT()}
	testLink  = link{Iface: net.Interface{Index: eth0, Name: "eth0"}, Addrs: []netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("fd00::1")}, Prefixes: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24"), netip.MustParsePrefix("fd00::/64")}}
	onLink4   = netip.MustParseAddrPort("10.0.0.2:5353")
	offLink4  = netip.MustParseAddrPort("192.0.2.7:5353")
	onLink6   = netip.MustParseAddrPort("[fd00::2]:5353")
	offLink6  = netip.MustParseAddrPort("[2001:db8::7]:5353")
	linkLocal = netip.MustParseAddrPort("[fe80::7%eth0]:5353")
	ours4     = netip.MustParseAddr("10.0.0.1")
)

// testResponder answers for testSvc on testLink; its probes (t0 to
// +500 ms) and start-up announcements (+750 ms, +1.75 s, +3.75 s) are
// over by t0 + 10 s.
func testResponder(t *testing.T) *responder {
	t.Helper()
	r := newResponder()
	r.delay = func(lo, hi time.Duration) time.Duration { return lo }
	if out := r.setLinks(t0, []link{testLink}, testSvc); len(out) != 0 {
		t.Fatalf("%d packets before probing", len(out))
	}
	claimed := probeThrough(t, r, testSvc.instance)
	for _, at := range announceRepeats {
		if n := len(r.due(claimed.Add(at))); n != 2 {
			t.Fatalf("%d packets repeat the announcement at %v", n, at)
		}
	}
	if !r.next().IsZero() {
		t.Fatalf("something left to send at %v", r.next())
	}
	return r
}

// probeThrough runs r's probes for instance (3 on each IP version, 250
// ms apart, §8.1) and its first announcement 250 ms after the last, and
// returns when that announcement went.
func probeThrough(t *testing.T, r *responder, instance string) time.Time {
	t.Helper()
	name := canonical(instance + "." + serviceName)
	var last time.Time
	for i := range probeCount {
		at := r.next()
		if i > 0 && at.Sub(last) != probeInterval {
			t.Fatalf("probe %d at +%v after the last, want +%v", i+1, at.Sub(last), probeInterval)
		}
		out := r.due(at)
		if len(out) != 2 || out[0].v6 == out[1].v6 || out[0].to.IsValid() {
			t.Fatalf("probe %d: %+v, want one multicast over IPv4 and one over IPv6", i+1, out)
		}
		m := unpack(t, out[0].b)
		if m.Response || len(m.Question) != 1 || m.Question[0].Name != name || m.Question[0].Qtype != dns.TypeANY ||
			m.Question[0].Qclass != dns.ClassINET|flushBit || types(m.Ns) != "SRV,TXT" || len(m.Answer) != 0 {
			t.Fatalf("probe %d:\n%v", i+1, m)
		}
		for _, rr := range m.Ns {
			if rr.Header().Class != dns.ClassINET {
				t.Errorf("probe carries %v with the cache-flush bit", rr)
			}
		}
		last = at
	}
	at := r.next()
	if at.Sub(last) != probeInterval {
		t.Fatalf("announced %v after the last probe, want %v", at.Sub(last), probeInterval)
	}
	out := r.due(at)
	if len(out) != 2 {
		t.Fatalf("%d packets announce the service, want 2 (IPv4, IPv6)", len(out))
	}
	if m := unpack(t, out[0].b); !m.Response || !strings.HasPrefix(types(m.Answer), "PTR,SRV,TXT,A") || m.Answer[0].(*dns.PTR).Ptr != name {
		t.Fatalf("announcement:\n%v", m)
	}
	return at
}

type queryOpt func(*dns.Msg)

func qu(m *dns.Msg) {
	for i := range m.Question {
		m.Question[i].Qclass |= flushBit
	}
}

func known(rrs ...dns.RR) queryOpt { return func(m *dns.Msg) { m.Answer = append(m.Answer, rrs...) } }

func question(name string, t uint16, opts ...queryOpt) []byte {
	m := new(dns.Msg)
	m.SetQuestion(name, t)
	m.Id, m.RecursionDesired = 0, false
	for _, o := range opts {
		o(m)
	}
	b, err := m.Pack()
	if err != nil {
		panic(err)
	}
	return b
}

func group(src netip.AddrPort) netip.Addr {
	if src.Addr().Is4() {
		return groupV4
	}
	return groupV6
}

func unpack(t *testing.T, b []byte) *dns.Msg {
	t.Helper()
	var m dns.Msg
	if err := m.Unpack(b); err != nil {
		t.Fatalf("unpack our own packet: %v", err)
	}
	return &m
}

func types(rrs []dns.RR) string {
	var s []string
	for _, rr := range rrs {
		s = append(s, dns.TypeToString[rr.Header().Rrtype])
	}
	return strings.Join(s, ",")
}

// flushAll runs due at each time the responder asks for, up to end.
func flushAll(r *responder, end time.Time) []outPacket {
	var out []outPacket
	flushEach(r, end, func(_ time.Time, o outPacket) { out = append(out, o) })
	return out
}

// flushEach runs due at each time the responder asks for, up to end, and
// passes on what it sends and when.
func flushEach(r *responder, end time.Time, f func(time.Time, outPacket)) {
	for n := r.next(); !n.IsZero() && !n.After(end); n = r.next() {
		for _, o := range r.due(n) {
			f(n, o)
		}
	}
}

func TestResponderAnswersBrowse(t *testing.T) {
	r := testResponder(t)
	now := t0.Add(10 * time.Second)
	if out := r.handle(now, question(serviceName, dns.TypePTR), onLink4, groupV4, eth0); len(out) != 0 {
		t.Fatalf("a multicast query was answered at once: %d packets", len(out))
	}
	if want := now.Add(sharedDelay[0]); !r.next().Equal(want) {
		t.Fatalf("answer due at %v, want %v (a shared record waits 20–120 ms)", r.next(), want)
	}
	out := flushAll(r, now.Add(time.Second))
	if len(out) != 1 || out[0].to.IsValid() || out[0].v6 || out[0].ifIndex != eth0 {
		t.Fatalf("answers %+v, want one IPv4 multicast on eth0", out)
	}
	m := unpack(t, out[0].b)
	if !m.Response || !m.Authoritative || len(m.Question) != 0 || types(m.Answer) != "PTR" || types(m.Extra) != "SRV,TXT,A,AAAA" {
		t.Fatalf("answer:\n%v", m)
	}
	if ptr := m.Answer[0].(*dns.PTR); ptr.Ptr != `Front\ Door._camd._tcp.local.` || ptr.Hdr.Class != dns.ClassINET || ptr.Hdr.Ttl != otherTTL {
		t.Errorf("PTR %v", ptr)
	}
	for _, rr := range m.Extra {
		if rr.Header().Class != dns.ClassINET|flushBit {
			t.Errorf("no cache-flush bit on %v", rr)
		}
	}
	if srv := m.Extra[0].(*dns.SRV); srv.Port != 8443 || srv.Target != "camd-abcdefgh.local." || srv.Hdr.Ttl != hostTTL {
		t.Errorf("SRV %v", srv)
	}

	// the other questions a resolver asks, by name, in any case
	for _, tc := range []struct {
		name      string
		qtype     uint16
		ans, more string
	}{
		{`front\ door._CAMD._tcp.local.`, dns.TypeSRV, "SRV", "A,AAAA"},
		{`Front\032Door._camd._tcp.local.`, dns.TypeTXT, "TXT", ""},
		{`Front\ Door._camd._tcp.local.`, dns.TypeANY, "SRV,TXT", "A,AAAA"},
		{"camd-abcdefgh.local.", dns.TypeA, "A", "AAAA"},
		{"CAMD-ABCDEFGH.local.", dns.TypeAAAA, "AAAA", "A"},
		{servicesName, dns.TypePTR, "PTR", ""},
	} {
		now = now.Add(2 * time.Second)
		r.handle(now, question(tc.name, tc.qtype), onLink4, groupV4, eth0)
		out := flushAll(r, now.Add(time.Second))
		if len(out) != 1 {
			t.Errorf("%s %s: %d answers", tc.name, dns.TypeToString[tc.qtype], len(out))
			continue
		}
		m := unpack(t, out[0].b)
		if types(m.Answer) != tc.ans || types(m.Extra) != tc.more {
			t.Errorf("%s %s: answer %s, additional %s; want %s, %s", tc.name, dns.TypeToString[tc.qtype], types(m.Answer), types(m.Extra), tc.ans, tc.more)
		}
	}
	// questions for others: nothing
	for _, q := range [][]byte{
		question("_http._tcp.local.", dns.TypePTR),
		question("other.local.", dns.TypeA),
		question("camd-abcdefgh.local.", dns.TypeMX),
	} {
		now = now.Add(2 * time.Second)
		r.handle(now, q, onLink4, groupV4, eth0)
		if out := flushAll(r, now.Add(time.Second)); len(out) != 0 {
			t.Errorf("answered a question for another: %v", unpack(t, out[0].b))
		}
	}
}

// TestResponderBoundsAFlood sends 200 queries over 2 s, from one address
// and from many: each record is multicast at most once a second.
func TestResponderBoundsAFlood(t *testing.T) {
	for _, tc := range []struct {
		name string
		q    []byte
		src  func(i int) netip.AddrPort
	}{
		{"one sender", question(serviceName, dns.TypePTR), func(int) netip.AddrPort { return onLink4 }},
		{"many senders", question(serviceName, dns.TypePTR), func(i int) netip.AddrPort {
			return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(2 + i%200)}), 5353)
		}},
		{"off-link QU", question(serviceName, dns.TypePTR, qu), func(int) netip.AddrPort { return offLink4 }},
		{"ANY for the host", question("camd-abcdefgh.local.", dns.TypeANY), func(int) netip.AddrPort { return onLink4 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := testResponder(t)
			start := t0.Add(10 * time.Second)
			sent := map[string][]time.Time{}
			var packets int
			var bytesIn, bytesOut int
			count := func(at time.Time, o outPacket) {
				packets++
				bytesOut += len(o.b)
				m := unpack(t, o.b)
				for _, rr := range append(m.Answer, m.Extra...) {
					sent[recordKey(rr)] = append(sent[recordKey(rr)], at)
				}
			}
			now := start
			for i := range 200 {
				now = start.Add(time.Duration(i) * 10 * time.Millisecond)
				flushEach(r, now, count)
				for _, o := range r.handle(now, tc.q, tc.src(i), groupV4, eth0) {
					count(now, o)
				}
				bytesIn += len(tc.q)
			}
			flushEach(r, now.Add(2*time.Second), count)
			if packets == 0 {
				t.Fatal("the flood was not answered at all")
			}
			for k, at := range sent {
				for i := 1; i < len(at); i++ {
					if gap := at[i].Sub(at[i-1]); gap < multicastGap {
						t.Errorf("%s multicast twice within %v", k, gap)
					}
				}
				if len(at) > 4 {
					t.Errorf("%s sent %d times for 200 queries over 2 s", k, len(at))
				}
			}
			t.Logf("200 queries (%d bytes) over 2 s: %d responses (%d bytes)", bytesIn, packets, bytesOut)
			if r.stats.Unicast != 0 {
				t.Errorf("%d unicast replies", r.stats.Unicast)
			}
		})
	}
}

// TestResponderUnicast: a QU question or a direct unicast query from
// on-link gets a unicast reply of at most 3 × its size, rate-limited;
// from off-link, never.
func TestResponderUnicast(t *testing.T) {
	padded := func(m *dns.Msg) {
		m.Extra = append(m.Extra, &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT, Class: 1440},
			Option: []dns.EDNS0{&dns.EDNS0_PADDING{Padding: make([]byte, 200)}}})
	}
	plain := question(serviceName, dns.TypePTR, qu)
	big := question(serviceName, dns.TypePTR, qu, padded)
	for _, tc := range []struct {
		name    string
		q       []byte
		src     netip.AddrPort
		dst     netip.Addr
		at      time.Duration // after t0
		unicast string        // "answer/additional" types, or "" for none
		mcast   bool          // answered by multicast instead
	}{
		{"QU, small", plain, onLink4, groupV4, 10 * time.Second, "PTR/SRV", false},
		{"QU, padded", big, onLink4, groupV4, 10 * time.Second, "PTR/SRV,TXT,A,AAAA", false},
		{"QU over IPv6", big, onLink6, groupV6, 10 * time.Second, "PTR/SRV,TXT,A,AAAA", false},
		{"QU from link-local", big, linkLocal, groupV6, 10 * time.Second, "PTR/SRV,TXT,A,AAAA", false},
		{"QU, not multicast for a quarter TTL", big, onLink4, groupV4, otherTTL * time.Second, "", true},
		{"QU from off-link", big, offLink4, groupV4, 10 * time.Second, "", true},
		{"QU from off-link IPv6", big, offLink6, groupV6, 10 * time.Second, "", true},
		{"direct unicast", big, onLink4, ours4, 10 * time.Second, "PTR/SRV,TXT,A,AAAA", false},
		{"direct unicast from off-link", big, offLink4, ours4, 10 * time.Second, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := testResponder(t)
			now := t0.Add(tc.at)
			out := r.handle(now, tc.q, tc.src, tc.dst, eth0)
			switch {
			case tc.unicast == "" && len(out) > 0:
				t.Fatalf("a unicast reply to %v", out[0].to)
			case tc.unicast != "":
				if len(out) != 1 || out[0].to != tc.src {
					t.Fatalf("replies %+v, want one to %v", out, tc.src)
				}
				m := unpack(t, out[0].b)
				if got := types(m.Answer) + "/" + types(m.Extra); got != tc.unicast {
					t.Errorf("reply %s, want %s", got, tc.unicast)
				}
				if len(out[0].b) > replyFactor*len(tc.q) {
					t.Errorf("%d-byte reply to a %d-byte query", len(out[0].b), len(tc.q))
				}
			}
			mc := flushAll(r, now.Add(2*time.Second))
			if tc.mcast != (len(mc) > 0) {
				t.Errorf("%d multicast responses, want some: %v", len(mc), tc.mcast)
			}
		})
	}

	t.Run("QU for a TXT too large", func(t *testing.T) {
		r := testResponder(t)
		big := testSvc
		big.txt = append(slices.Clone(big.txt), "x="+strings.Repeat("y", 100))
		r.setLinks(t0, []link{testLink}, big)
		flushAll(r, t0.Add(5*time.Second))
		q := question(`Front\ Door._camd._tcp.local.`, dns.TypeTXT, qu)
		now := t0.Add(10 * time.Second)
		if out := r.handle(now, q, onLink4, groupV4, eth0); len(out) != 0 {
			t.Fatalf("a %d-byte reply to a %d-byte query", len(out[0].b), len(q))
		}
		if out := flushAll(r, now.Add(time.Second)); len(out) != 1 || types(unpack(t, out[0].b).Answer) != "TXT" {
			t.Fatalf("not answered by multicast instead: %d packets", len(out))
		}
	})

	t.Run("rate", func(t *testing.T) {
		r := testResponder(t)
		now := t0.Add(10 * time.Second)
		n, other := 0, 0
		for i := range 100 {
			at := now.Add(time.Duration(i) * 10 * time.Millisecond)
			n += len(r.handle(at, big, onLink4, groupV4, eth0))
			if i%10 == 0 {
				other += len(r.handle(at, big, netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(100 + i)}), 5353), groupV4, eth0))
			}
		}
		// burst 4, then 2/s over 1 s
		if n < unicastBurst || n > unicastBurst+unicastRate+1 {
			t.Errorf("%d unicast replies to 100 QU queries from one address in 1 s", n)
		}
		if other != 10 {
			t.Errorf("%d of 10 other addresses got a reply", other)
		}
		mc := len(flushAll(r, now.Add(3*time.Second)))
		t.Logf("100 QU queries in 1 s from one address: %d unicast replies, %d multicast responses", n, mc)
		if mc > 2 {
			t.Errorf("%d multicast responses to 100 QU queries in 1 s", mc)
		}
	})
}

// TestResponderLegacy: a one-shot resolver (dig -p 5353 @224.0.0.251)
// gets a unicast reply to its port, with its ID and question, short TTLs
// and no cache-flush bit; from off-link, nothing.
func TestResponderLegacy(t *testing.T) {
	dig := func(name string, qtype uint16) []byte {
		m := new(dns.Msg)
		m.SetQuestion(name, qtype)
		m.Id = 4242
		m.SetEdns0(1232, false)
		b, _ := m.Pack()
		return b
	}
	legacy := netip.MustParseAddrPort("10.0.0.2:40000")
	r := testResponder(t)
	now := t0.Add(10 * time.Second)
	q := dig(serviceName, dns.TypePTR)
	out := r.handle(now, q, legacy, groupV4, eth0)
	if len(out) != 1 || out[0].to != legacy {
		t.Fatalf("replies %+v, want one to %v", out, legacy)
	}
	m := unpack(t, out[0].b)
	if m.Id != 4242 || len(m.Question) != 1 || m.Question[0].Name != serviceName || types(m.Answer) != "PTR" {
		t.Fatalf("reply:\n%v", m)
	}
	for _, rr := range append(m.Answer, m.Extra...) {
		if h := rr.Header(); h.Rrtype != dns.TypeOPT && (h.Ttl > legacyTTL || h.Class&flushBit != 0) {
			t.Errorf("legacy reply carries %v", rr)
		}
	}
	if len(out[0].b) > replyFactor*len(q) {
		t.Errorf("%d-byte reply to a %d-byte query", len(out[0].b), len(q))
	}
	if mc := flushAll(r, now.Add(2*time.Second)); len(mc) != 0 {
		t.Error("a legacy query was answered by multicast")
	}

	// too large for 3 × the query: truncated
	big := testSvc
	big.txt = append(slices.Clone(big.txt), "x="+strings.Repeat("y", 200))
	r.setLinks(now, []link{testLink}, big)
	out = r.handle(now, dig(`Front\ Door._camd._tcp.local.`, dns.TypeTXT), legacy, groupV4, eth0)
	if len(out) != 1 {
		t.Fatalf("%d replies to a query for a large TXT", len(out))
	}
	if m := unpack(t, out[0].b); !m.Truncated || len(m.Answer) != 0 || len(m.Question) != 1 {
		t.Errorf("reply for a large TXT:\n%v", m)
	}

	for name, src := range map[string]netip.AddrPort{"off-link": netip.MustParseAddrPort("192.0.2.7:40000"), "off-link IPv6": netip.MustParseAddrPort("[2001:db8::7]:40000")} {
		if out := r.handle(now, q, src, group(src), eth0); len(out) != 0 {
			t.Errorf("%s: replied to %v", name, out[0].to)
		}
	}
	// with known answers or authority records: not a one-shot resolver
	withKnown := question(serviceName, dns.TypePTR, known(&dns.A{Hdr: dns.RR_Header{Name: "x.local.", Rrtype: dns.TypeA, Class: dns.ClassINET}, A: net.IPv4(1, 2, 3, 4)}))
	if out := r.handle(now, withKnown, legacy, groupV4, eth0); len(out) != 0 {
		t.Error("answered a legacy query carrying known answers")
	}
}

func TestResponderKnownAnswers(t *testing.T) {
	r := testResponder(t)
	ptr := r.links[eth0].recs[0].rr.(*dns.PTR)
	kaPTR := func(ttl uint32) queryOpt {
		return known(&dns.PTR{Hdr: dns.RR_Header{Name: "_CAMD._tcp.local.", Rrtype: dns.TypePTR, Class: dns.ClassINET, Ttl: ttl}, Ptr: strings.ToUpper(ptr.Ptr)})
	}
	now := t0.Add(10 * time.Second)
	r.handle(now, question(serviceName, dns.TypePTR, kaPTR(otherTTL/2)), onLink4, groupV4, eth0)
	if out := flushAll(r, now.Add(time.Second)); len(out) != 0 {
		t.Fatalf("answered a question whose answer the querier knows:\n%v", unpack(t, out[0].b))
	}
	// less than half the TTL left: answered
	now = now.Add(2 * time.Second)
	r.handle(now, question(serviceName, dns.TypePTR, kaPTR(otherTTL/2-1)), onLink4, groupV4, eth0)
	if out := flushAll(r, now.Add(time.Second)); len(out) != 1 {
		t.Fatalf("%d answers when the known answer is about to expire", len(out))
	}
	// §7.2: a query with TC waits 400–500 ms for more known answers,
	// which arrive in a packet without questions
	now = now.Add(2 * time.Second)
	m := new(dns.Msg)
	m.SetQuestion(serviceName, dns.TypePTR)
	m.Truncated = true
	tc, _ := m.Pack()
	r.handle(now, tc, onLink4, groupV4, eth0)
	if want := now.Add(truncatedDelay[0]); !r.next().Equal(want) {
		t.Fatalf("a truncated query is answered at %v, want %v", r.next(), want)
	}
	r.handle(now.Add(10*time.Millisecond), (func() []byte {
		m := new(dns.Msg)
		m.Answer = []dns.RR{ptr}
		b, _ := m.Pack()
		return b
	})(), onLink4, groupV4, eth0)
	if out := flushAll(r, now.Add(time.Second)); len(out) != 0 {
		t.Fatalf("answered despite the known answers that followed:\n%v", unpack(t, out[0].b))
	}
}

// TestResponderDefendsItsNames answers a probe for its instance or host
// name at once, even within a second of the last multicast.
func TestResponderDefendsItsNames(t *testing.T) {
	r := testResponder(t)
	now := t0.Add(10 * time.Second)
	r.handle(now, question(serviceName, dns.TypePTR), onLink4, groupV4, eth0)
	flushAll(r, now.Add(time.Second))
	for _, name := range []string{`Front\ Door._camd._tcp.local.`, "camd-abcdefgh.local."} {
		now = now.Add(300 * time.Millisecond)
		probe := question(name, dns.TypeANY, qu, func(m *dns.Msg) {
			m.Ns = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 120}, A: net.IPv4(10, 0, 0, 99)}}
		})
		if out := r.handle(now, probe, onLink4, groupV4, eth0); len(out) != 0 {
			t.Fatalf("a probe was answered by unicast")
		}
		if !r.next().Equal(now) {
			t.Fatalf("the probe is answered at %v, want at once", r.next())
		}
		out := r.due(now)
		if len(out) != 1 || out[0].to.IsValid() {
			t.Fatalf("%d answers to a probe for %s", len(out), name)
		}
		t.Logf("probe for %s: %s", name, types(unpack(t, out[0].b).Answer))
	}
}

// srvResponse is another host's response announcing an SRV record.
func srvResponse(name, target string, ttl uint32) []byte {
	m := new(dns.Msg)
	m.Response, m.Authoritative = true, true
	m.Answer = []dns.RR{&dns.SRV{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeSRV, Class: dns.ClassINET | flushBit, Ttl: ttl},
		Port: 8443, Target: target}}
	b, err := m.Pack()
	if err != nil {
		panic(err)
	}
	return b
}

// TestResponderSettlesANameConflict: another camera announcing our
// instance name with its own host is a conflict (RFC 6762 §9); the
// tie-break on the SRV targets decides who renames, and the other side
// defends its records at once.
func TestResponderSettlesANameConflict(t *testing.T) {
	const name = `Front\ Door._camd._tcp.local.`
	r := testResponder(t)
	now := t0.Add(10 * time.Second)
	for _, tc := range []struct {
		what, name, target string
		ttl                uint32
	}{
		{"our own records looped back", name, "camd-abcdefgh.local.", 120},
		{"a goodbye", name, "camd-zzzzzzzz.local.", 0},
		{"another instance", `Back\ Door._camd._tcp.local.`, "camd-zzzzzzzz.local.", 120},
	} {
		now = now.Add(2 * time.Second)
		r.handle(now, srvResponse(tc.name, tc.target, tc.ttl), onLink4, groupV4, eth0)
		if r.takeRename() || r.stats.Conflicts != 0 || len(flushAll(r, now.Add(time.Second))) != 0 {
			t.Fatalf("%s taken for a conflict", tc.what)
		}
	}

	// A response sent to camd's address from beyond the link claims
	// nothing.
	now = now.Add(2 * time.Second)
	r.handle(now, srvResponse(name, "camd-zzzzzzzz.local.", 120), offLink4, ours4, eth0)
	if r.takeRename() || r.stats.Conflicts != 0 {
		t.Fatal("a unicast response from off-link taken for a conflict")
	}

	// A host whose target sorts before ours: it gives way, we keep the
	// name and defend it.
	now = now.Add(2 * time.Second)
	r.handle(now, srvResponse(name, "camd-00000000.local.", 120), onLink4, groupV4, eth0)
	if r.takeRename() {
		t.Fatal("renamed though the other host's target sorts first")
	}
	if !r.next().Equal(now) {
		t.Fatalf("the defence goes at %v, want at once", r.next())
	}
	out := r.due(now)
	if len(out) != 1 || out[0].to.IsValid() || !strings.Contains(types(unpack(t, out[0].b).Answer), "SRV") {
		t.Fatalf("defence: %d packets", len(out))
	}

	// A host whose target sorts after ours (names compare without case):
	// we give way.
	now = now.Add(2 * time.Second)
	r.handle(now, srvResponse(`front\ DOOR._camd._tcp.local.`, "CAMD-zzzzzzzz.local.", 120), onLink6, groupV6, eth0)
	if !r.takeRename() || r.takeRename() {
		t.Fatal("no rename asked (once) for a name another host wins")
	}
	if r.stats.Conflicts != 2 {
		t.Fatalf("%d conflicts counted, want 2", r.stats.Conflicts)
	}
	// Renamed, it says goodbye at once to its own SRV and TXT under the
	// old name, but not to the PTR that the winner announces too; then it
	// probes for the new name and announces it.
	svc := testSvc
	svc.instance = "Front Door (2)"
	now = now.Add(time.Second)
	out = r.setLinks(now, []link{testLink}, svc)
	if len(out) != 2 {
		t.Fatalf("%d packets say goodbye to the old name", len(out))
	}
	var byes []string
	for _, rr := range unpack(t, out[0].b).Answer {
		if rr.Header().Ttl != 0 {
			t.Errorf("%v announced before the new name was probed for", rr)
		}
		byes = append(byes, dns.TypeToString[rr.Header().Rrtype])
		if ptr, ok := rr.(*dns.PTR); ok {
			t.Errorf("goodbye for the PTR to %s, which the winner announces", ptr.Ptr)
		}
	}
	if !slices.Equal(byes, []string{"SRV", "TXT"}) {
		t.Errorf("goodbyes for %v, want the old SRV and TXT", byes)
	}
	probeThrough(t, r, svc.instance)
}

// A host that keeps answering with our name (a flood of conflicting
// responses, or a spoofer) makes camd rename at most once a second.
func TestResponderRenamesAtMostOnceASecond(t *testing.T) {
	const name = `Front\ Door._camd._tcp.local.`
	r := testResponder(t)
	now := t0.Add(10 * time.Second)
	renames := 0
	for i := range 50 { // 50 conflicting responses in 2.5 s
		r.handle(now.Add(time.Duration(i)*50*time.Millisecond), srvResponse(name, "camd-zzzzzzzz.local.", 120), onLink4, groupV4, eth0)
		if r.takeRename() {
			renames++
		}
	}
	if renames != 3 || r.stats.Conflicts != 50 {
		t.Fatalf("%d renames asked for %d conflicts in 2.5 s, want 3 (at 0, 1 and 2 s)", renames, r.stats.Conflicts)
	}
}

// TestResponderIgnoresBadInput: malformed datagrams, responses, other
// interfaces and groups get nothing, and the responder still answers.
func TestResponderIgnoresBadInput(t *testing.T) {
	r := testResponder(t)
	now := t0.Add(10 * time.Second)
	good := question(serviceName, dns.TypePTR)
	resp := new(dns.Msg)
	resp.Response = true
	resp.Answer = []dns.RR{r.links[eth0].recs[0].rr}
	respb, _ := resp.Pack()
	for name, tc := range map[string]struct {
		pkt     []byte
		ifIndex int
		dst     netip.Addr
	}{
		"empty":        {[]byte{}, eth0, groupV4},
		"header":       {good[:5], eth0, groupV4},
		"truncated":    {good[:len(good)-3], eth0, groupV4},
		"junk":         {[]byte(strings.Repeat("\xff", 1400)), eth0, groupV4},
		"pointer loop": {[]byte{0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 12, 0, 1}, eth0, groupV4},
		"counts":       {[]byte{0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, eth0, groupV4},
		"label":        {append([]byte{0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 64}, make([]byte, 70)...), eth0, groupV4},
		"oversize":     {append(slices.Clone(good), make([]byte, maxDatagram)...), eth0, groupV4},
		"response":     {respb, eth0, groupV4},
		"other group":  {good, eth0, netip.MustParseAddr("239.255.255.250")},
		"other iface":  {good, 7, groupV4},
		"update":       {func() []byte { m := new(dns.Msg); m.SetUpdate("local."); b, _ := m.Pack(); return b }(), eth0, groupV4},
	} {
		t.Run(name, func(t *testing.T) {
			if out := r.handle(now, tc.pkt, onLink4, tc.dst, tc.ifIndex); len(out) != 0 {
				t.Fatal("replied")
			}
			if out := flushAll(r, now.Add(time.Second)); len(out) != 0 {
				t.Fatal("answered")
			}
		})
	}
	if r.stats.Malformed < 6 {
		t.Errorf("%d malformed datagrams counted", r.stats.Malformed)
	}
	now = now.Add(2 * time.Second)
	r.handle(now, good, onLink4, groupV4, eth0)
	if out := flushAll(r, now.Add(time.Second)); len(out) != 1 {
		t.Fatal("the responder stopped answering after bad input")
	}
}

// TestResponderAnnouncesChanges: a change is announced at once, with
// goodbyes for what is gone, and repeated; a link left and Close get
// goodbyes.
func TestResponderAnnouncesChanges(t *testing.T) {
	r := testResponder(t)
	now := t0.Add(10 * time.Second)
	paired := testSvc
	paired.txt = Info{ID: "ABCDEFGHIJKLMNOP", Model: "sim", Firmware: "1.2.3", Paired: true}.TXT()
	out := r.setLinks(now, []link{testLink}, paired)
	if len(out) != 2 {
		t.Fatalf("%d packets for a TXT change", len(out))
	}
	m := unpack(t, out[0].b)
	if types(m.Answer) != "TXT,PTR,SRV,TXT,A,AAAA,PTR" || m.Answer[0].Header().Ttl != 0 || !slices.Contains(m.Answer[3].(*dns.TXT).Txt, "paired=1") {
		t.Fatalf("TXT change announced as:\n%v", m)
	}
	if out := r.setLinks(now, []link{testLink}, paired); len(out) != 0 {
		t.Errorf("no change, yet %d packets", len(out))
	}
	for _, at := range announceRepeats {
		if n := len(r.due(now.Add(at))); n != 2 {
			t.Errorf("%d packets repeat the announcement at +%v", n, at)
		}
	}
	moved := testLink
	moved.Addrs = []netip.Addr{netip.MustParseAddr("10.0.0.9")}
	m = unpack(t, r.setLinks(now, []link{moved}, paired)[0].b)
	if types(m.Answer) != "A,AAAA,PTR,SRV,TXT,A,PTR" || m.Answer[0].(*dns.A).A.String() != "10.0.0.1" || m.Answer[0].Header().Ttl != 0 {
		t.Errorf("address change announced as:\n%v", m)
	}
	// A new link: goodbyes on the one left at once, and the name probed
	// for on the new one before it is announced there.
	wlan := link{Iface: net.Interface{Index: 3, Name: "wlan0"}, Addrs: []netip.Addr{netip.MustParseAddr("10.1.0.1")}}
	out = r.setLinks(now, []link{wlan}, paired)
	var byes int
	for _, o := range out {
		if m := unpack(t, o.b); o.ifIndex == eth0 && m.Answer[0].Header().Ttl == 0 {
			byes++
		}
	}
	if byes != 2 || len(out) != 2 {
		t.Errorf("moving to wlan0: %d goodbyes on eth0 in %d packets", byes, len(out))
	}
	probeThrough(t, r, paired.instance)
	out = r.close()
	if len(out) != 2 || out[0].ifIndex != 3 {
		t.Fatalf("close sent %+v", out)
	}
	for _, rr := range unpack(t, out[0].b).Answer {
		if rr.Header().Ttl != 0 {
			t.Errorf("goodbye carries %v", rr)
		}
	}
}

func TestInstanceLabel(t *testing.T) {
	long := strings.Repeat("é", 40) // 80 bytes
	a := &Announcer{o: Options{ID: "ABCDEFGHIJKLMNOP"}}
	for name, want := range map[string]string{
		"":             "camd-abcd",
		DefaultName:    "camd-abcd",
		" Front Door.": "Front Door",
		long:           strings.Repeat("é", 31),
	} {
		a.name = name
		if got := a.instance(); got != want {
			t.Errorf("instance(%q) = %q, want %q", name, got, want)
		}
	}
	// A name found taken on the LAN gets a number, within 63 bytes.
	a.renames = 1
	for name, want := range map[string]string{
		"Front Door": "Front Door (2)",
		DefaultName:  "camd-abcd (2)",
		long:         strings.Repeat("é", 29) + " (2)",
	} {
		a.name = name
		if got := a.instance(); got != want || len(got) > maxLabel {
			t.Errorf("renamed instance(%q) = %q, want %q", name, got, want)
		}
	}
	a.SetName("Back Door")
	if got := a.instance(); got != "Back Door" {
		t.Errorf("a new name keeps the number: %q", got)
	}
	// a label with a dot and a backslash still packs and answers
	r := newResponder()
	svc := testSvc
	svc.instance = escapeLabel(`My.Cam\1`)
	r.setLinks(t0, []link{testLink}, svc)
	out := flushAll(r, t0.Add(5*time.Second))
	if len(out) != 6+6 {
		t.Fatalf("%d packets, want 6 probes and 3 announcements (IPv4, IPv6)", len(out))
	}
	if ptr := unpack(t, out[6].b).Answer[0].(*dns.PTR); ptr.Ptr != `My\.Cam\\1._camd._tcp.local.` {
		t.Errorf("PTR to %q", ptr.Ptr)
	}
	r.handle(t0.Add(10*time.Second), question(`my\.cam\\1._camd._tcp.local.`, dns.TypeSRV), onLink4, groupV4, eth0)
	if len(flushAll(r, t0.Add(11*time.Second))) != 1 {
		t.Error("no answer for the escaped name")
	}
}

// FuzzResponderPacket checks that no datagram crashes the responder, that
// no unicast reply exceeds 3 × the datagram and that nothing goes to an
// off-link address.
func FuzzResponderPacket(f *testing.F) {
	f.Add(question(serviceName, dns.TypePTR), uint16(5353), true, false)
	f.Add(question(serviceName, dns.TypePTR, qu), uint16(5353), true, true)
	f.Add(question(`Front\ Door._camd._tcp.local.`, dns.TypeANY), uint16(40000), false, false)
	f.Add(question("camd-abcdefgh.local.", dns.TypeA, qu), uint16(5353), false, true)
	ask, _ := askQuery().Pack()
	f.Add(ask, uint16(5353), true, false)
	f.Add([]byte{0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 12, 0, 1}, uint16(5353), true, false)
	f.Fuzz(func(t *testing.T, pkt []byte, port uint16, multicast, offLink bool) {
		r := newResponder()
		r.delay = func(lo, hi time.Duration) time.Duration { return lo }
		r.setLinks(t0, []link{testLink}, testSvc)
		flushAll(r, t0.Add(5*time.Second))
		src := netip.AddrPortFrom(onLink4.Addr(), port)
		if offLink {
			src = netip.AddrPortFrom(offLink4.Addr(), port)
		}
		dst := groupV4
		if !multicast {
			dst = ours4
		}
		now := t0.Add(10 * time.Second)
		out := r.handle(now, pkt, src, dst, eth0)
		out = append(out, flushAll(r, now.Add(5*time.Second))...)
		for _, o := range out {
			if o.to.IsValid() {
				if offLink {
					t.Fatalf("a reply to off-link %v", o.to)
				}
				if len(o.b) > replyFactor*len(pkt) {
					t.Fatalf("a %d-byte reply to a %d-byte datagram", len(o.b), len(pkt))
				}
			} else if len(o.b) > maxMulticast {
				t.Fatalf("a %d-byte multicast", len(o.b))
			}
		}
	})
}
