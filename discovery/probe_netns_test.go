package discovery

import (
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/ipv4"

	"github.com/camd-project/camd/discovery/netnstest"
)

// hostile is a neighbour in namespace B that answers every probe for a
// _camd._tcp instance with an SRV record of its own under that name, for
// as long as attacking is set. It notes each probe it hears and the
// instance names announced.
type hostile struct {
	c         *ipv4.PacketConn
	attacking atomic.Bool
	wg        sync.WaitGroup

	mu       sync.Mutex
	probes   []heard // every IPv4 probe
	attacked map[string]bool
	changed  chan struct{}
	announce chan string
}

type heard struct {
	at   time.Time
	name string
}

func newHostile(t *testing.T, p *netnstest.Pair) *hostile {
	t.Helper()
	h := &hostile{attacked: map[string]bool{}, changed: make(chan struct{}, 1), announce: make(chan string, 64)}
	h.attacking.Store(true)
	err := netnstest.Do(p.B, func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		c, err := net.ListenUDP("udp4", mdnsV4)
		if err != nil {
			return err
		}
		h.c = ipv4.NewPacketConn(c)
		if err := h.c.JoinGroup(ifi, &net.UDPAddr{IP: mdnsV4.IP}); err != nil {
			c.Close()
			return err
		}
		return h.c.SetMulticastInterface(ifi)
	})
	if err != nil {
		t.Fatal(err)
	}
	camera := netip.MustParseAddr(p.AddrA)
	h.wg.Add(1)
	go h.run(t, camera)
	t.Cleanup(func() {
		h.c.Close()
		h.wg.Wait()
	})
	return h
}

func (h *hostile) run(t *testing.T, camera netip.Addr) {
	defer h.wg.Done()
	buf := make([]byte, 9000)
	for {
		n, _, from, err := h.c.ReadFrom(buf)
		if err != nil {
			return
		}
		src, ok := from.(*net.UDPAddr)
		var m dns.Msg
		if !ok || src.AddrPort().Addr().Unmap() != camera || m.Unpack(buf[:n]) != nil {
			continue
		}
		if m.Response {
			for _, rr := range m.Answer {
				if ptr, ok := rr.(*dns.PTR); ok && ptr.Hdr.Name == serviceName && ptr.Hdr.Ttl > 0 {
					select {
					case h.announce <- ptr.Ptr:
					default:
					}
				}
			}
			continue
		}
		if len(m.Question) != 1 || m.Question[0].Qtype != dns.TypeANY || len(m.Ns) == 0 {
			continue
		}
		name := m.Question[0].Name
		attack := h.attacking.Load()
		h.mu.Lock()
		h.probes = append(h.probes, heard{time.Now(), name})
		if attack {
			h.attacked[name] = true
		}
		h.mu.Unlock()
		select {
		case h.changed <- struct{}{}:
		default:
		}
		if !attack {
			continue
		}
		resp := new(dns.Msg)
		resp.Response, resp.Authoritative = true, true
		resp.Answer = []dns.RR{&dns.SRV{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeSRV, Class: dns.ClassINET | flushBit, Ttl: 120},
			Port: 443, Target: "evil.local."}}
		b, err := resp.Pack()
		if err != nil {
			t.Error(err)
			return
		}
		h.c.WriteTo(b, nil, mdnsV4)
	}
}

// attempts lists the probe attempts heard: the first probe for each name.
func (h *hostile) attempts() []heard {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []heard
	for _, p := range h.probes {
		if !slices.ContainsFunc(out, func(a heard) bool { return a.name == p.name }) {
			out = append(out, p)
		}
	}
	return out
}

// slowedAt returns the index of the attempt after which camd had met 15
// conflicts within 10 s (as heard in B), or -1.
func slowedAt(attempts []heard) int {
	for i := maxConflicts - 1; i < len(attempts); i++ {
		if attempts[i].at.Sub(attempts[i-maxConflicts+1].at) <= conflictWindow {
			return i
		}
	}
	return -1
}

// TestHostileNeighbourSlowsProbing: a neighbour in namespace B answers
// every probe of the camera in A with a conflicting record. The camera
// takes the next name each time, quickly for the first 15 conflicts,
// then (RFC 6762 §8.1) one probe attempt every 5 s at most; when the
// neighbour stops, it ends up announced under a name nobody claimed.
func TestHostileNeighbourSlowsProbing(t *testing.T) {
	p, child := netnstest.InA(t)
	if !child {
		return
	}
	h := newHostile(t, p)
	a, err := Start(Options{Name: "Cam", Port: 8443, ID: "ABCDEFGHIJKLMNOP", ListenHost: "0.0.0.0", Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()

	// Under attack until two attempts came after the slow-down.
	first, deadline := time.After(10*time.Second), time.After(90*time.Second)
	for {
		attempts := h.attempts()
		if k := slowedAt(attempts); k >= 0 && len(attempts) >= k+3 {
			break
		}
		select {
		case <-h.changed:
		case <-first:
			if len(attempts) == 0 {
				t.Fatal("the camera did not probe for its name within 10 s")
			}
		case <-deadline:
			t.Fatalf("no slow-down heard within 90 s: attempts %v", attempts)
		}
	}
	h.attacking.Store(false)
	stopped := time.Now()

	attempts := h.attempts()
	k := slowedAt(attempts)
	h.mu.Lock()
	probes := slices.Clone(h.probes)
	h.mu.Unlock()
	perSecond := map[int]int{}
	for _, p := range probes {
		perSecond[int(p.at.Sub(attempts[0].at)/time.Second)]++
	}
	t.Logf("%d attempts; 15 conflicts within %v; probes (IPv4) per second since the first: %v",
		len(attempts), attempts[k].at.Sub(attempts[k-maxConflicts+1].at).Round(time.Millisecond), perSecond)
	for i := k + 1; i < len(attempts); i++ {
		// 5 s in camd's clock; the packets heard in B may be a little
		// closer together.
		if gap := attempts[i].at.Sub(attempts[i-1].at); gap < slowProbeGap-500*time.Millisecond {
			t.Errorf("attempt %d (%s) came %v after the last, after 15 conflicts within 10 s", i+1, attempts[i].name, gap)
		}
	}
	for _, a := range attempts {
		n := 0
		for _, p := range probes {
			if p.name == a.name {
				n++
			}
		}
		if n > probeCount {
			t.Errorf("%d probes for %s", n, a.name)
		}
	}

	// The neighbour stops: the camera probes once more and announces a
	// name nobody claimed.
	select {
	case name := <-h.announce:
		h.mu.Lock()
		taken := h.attacked[name]
		h.mu.Unlock()
		t.Logf("announced %s %v after the attack stopped", name, time.Since(stopped).Round(time.Millisecond))
		if taken {
			t.Errorf("announced %s, a name the neighbour claimed", name)
		}
		if want := escapeLabel(a.instance()); canonical(want+"."+serviceName) != name {
			t.Errorf("announced %s, the announcer's instance is %s", name, want)
		}
	case <-time.After(3 * slowProbeGap):
		t.Fatal("not announced after the attack stopped")
	}
	cams := listedFrom(t, p.B, func(c Camera) bool { return c.ID == "ABCDEFGHIJKLMNOP" })
	if len(cams) != 1 || cams[0].Name != a.instance() {
		t.Errorf("browse lists %+v, want the camera as %q", cams, a.instance())
	}
}
