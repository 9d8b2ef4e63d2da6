package discovery

import (
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/ipv4"

	"github.com/camd-project/camd/discovery/netnstest"
	"github.com/camd-project/camd/discovery/wsd"
)

// flood is what a flood of mDNS queries drew.
type flood struct {
	elapsed                      time.Duration
	multicast, multicastBytes    int
	unicast, unicastBytes        int
	biggestUnicast, maxPerRecord int
	minGap                       time.Duration
}

// quQuery is the padded PTR question with the QU bit a browse starts
// with.
func quQuery() []byte {
	b, err := askQuery().Pack()
	if err != nil {
		panic(err)
	}
	return b
}

// floodMDNS sends q 200 times over 2 s from namespace B, from port 5353
// (or another port if legacy), and counts what comes back until 1.5 s
// after the last: multicast responses (heard on the group from port 5353)
// and unicast replies.
func floodMDNS(t *testing.T, p *netnstest.Pair, q []byte, legacy bool) flood {
	t.Helper()
	var group, sender *ipv4.PacketConn
	err := netnstest.Do(p.B, func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		c, err := net.ListenUDP("udp4", mdnsV4) // 0.0.0.0:5353
		if err != nil {
			return err
		}
		group = ipv4.NewPacketConn(c)
		if err := group.JoinGroup(ifi, &net.UDPAddr{IP: mdnsV4.IP}); err != nil {
			return err
		}
		sender = group
		if legacy {
			c, err := net.ListenUDP("udp4", &net.UDPAddr{})
			if err != nil {
				return err
			}
			sender = ipv4.NewPacketConn(c)
		}
		for _, c := range []*ipv4.PacketConn{group, sender} {
			if err := c.SetControlMessage(ipv4.FlagDst, true); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer group.Close()
	defer sender.Close()

	var mu sync.Mutex
	var f flood
	seen := map[string][]time.Time{}
	read := func(c *ipv4.PacketConn, wg *sync.WaitGroup) {
		defer wg.Done()
		buf := make([]byte, 9000)
		for {
			n, cm, _, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			var m dns.Msg
			if cm == nil || m.Unpack(buf[:n]) != nil || !m.Response {
				continue
			}
			now := time.Now()
			mu.Lock()
			if cm.Dst.IsMulticast() {
				f.multicast++
				f.multicastBytes += n
				for _, rr := range append(m.Answer, m.Extra...) {
					if rr.Header().Ttl > 0 {
						k := recordKey(rr)
						seen[k] = append(seen[k], now)
					}
				}
			} else {
				f.unicast++
				f.unicastBytes += n
				f.biggestUnicast = max(f.biggestUnicast, n)
			}
			mu.Unlock()
		}
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go read(group, &wg)
	if legacy {
		wg.Add(1)
		go read(sender, &wg)
	}
	start := time.Now()
	for range 200 {
		sender.WriteTo(q, nil, mdnsV4)
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(1500 * time.Millisecond)
	group.Close()
	sender.Close()
	wg.Wait()
	f.elapsed = time.Since(start)
	f.minGap = time.Hour
	for _, at := range seen {
		f.maxPerRecord = max(f.maxPerRecord, len(at))
		for i := 1; i < len(at); i++ {
			f.minGap = min(f.minGap, at[i].Sub(at[i-1]))
		}
	}
	return f
}

// multicastFromB opens a UDP socket in namespace B that sends on eth0.
func multicastFromB(t *testing.T, p *netnstest.Pair) *ipv4.PacketConn {
	t.Helper()
	var c *net.UDPConn
	if err := netnstest.Do(p.B, func() (err error) {
		c, err = net.ListenUDP("udp4", &net.UDPAddr{})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return ipv4.NewPacketConn(c)
}

// TestAnnouncerSurvivesBadInput sends the announcer, from another
// namespace, malformed mDNS packets, floods of mDNS queries, malformed
// and oversized WS-Discovery datagrams and a flood of probes; it must keep
// answering, and answer the floods within its bounds.
func TestAnnouncerSurvivesBadInput(t *testing.T) {
	p, child := netnstest.InA(t)
	if !child {
		return
	}
	a, err := Start(Options{Name: "Cam", Port: 8443, ID: "ABCDEFGHIJKLMNOP", ListenHost: "0.0.0.0", ONVIF: true, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	c := multicastFromB(t, p)
	mdns := &net.UDPAddr{IP: net.IPv4(224, 0, 0, 251), Port: 5353}
	wsdGroup := &net.UDPAddr{IP: net.IPv4(239, 255, 255, 250), Port: 3702}

	q := new(dns.Msg)
	q.SetQuestion(serviceName, dns.TypePTR)
	good, _ := q.Pack()
	for _, pkt := range [][]byte{
		{}, good[:5], good[:len(good)-3], []byte(strings.Repeat("\xff", 1400)),
		{0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 12, 0, 1}, // pointer loop
		append(append([]byte{}, good...), make([]byte, 8000)...),
	} {
		c.WriteTo(pkt, nil, mdns)
	}
	for _, pkt := range []string{"", "<", "<e:Envelope>", strings.Repeat("<a>", 5000), strings.Repeat("x", 60000)} {
		c.WriteTo([]byte(pkt), nil, wsdGroup)
	}

	// still answering: a browse from B finds the camera
	browse := func() []Camera {
		return listedFrom(t, p.B, func(c Camera) bool { return c.ID == "ABCDEFGHIJKLMNOP" })
	}
	if cams := browse(); len(cams) != 1 || cams[0].ID != "ABCDEFGHIJKLMNOP" {
		t.Fatalf("after malformed packets, browse found %+v", cams)
	}

	// Floods of mDNS queries, 200 over 2 s each: multicast from port
	// 5353, asking for unicast replies (QU), and from a one-shot resolver
	// (another port). Each record is multicast at most once a second; the
	// unicast replies stay within the rate limit and 3 × the query.
	for _, tc := range []struct {
		name   string
		q      []byte
		legacy bool
	}{
		{"multicast (QM)", good, false},
		{"unicast-response (QU)", quQuery(), false},
		{"legacy (port ≠ 5353)", good, true},
	} {
		f := floodMDNS(t, p, tc.q, tc.legacy)
		t.Logf("mDNS %s: 200 queries (%d bytes) in %.1f s drew %d multicast responses (%d bytes) and %d unicast replies (%d bytes); most copies of one record: %d",
			tc.name, 200*len(tc.q), f.elapsed.Seconds(), f.multicast, f.multicastBytes, f.unicast, f.unicastBytes, f.maxPerRecord)
		if f.multicast+f.unicast == 0 {
			t.Errorf("%s: the flood was not answered at all", tc.name)
		}
		if limit := 1 + int(f.elapsed.Seconds()+0.999); f.maxPerRecord > limit {
			t.Errorf("%s: a record was multicast %d times in %.1f s, want at most %d (once a second)", tc.name, f.maxPerRecord, f.elapsed.Seconds(), limit)
		}
		if f.minGap < 900*time.Millisecond {
			t.Errorf("%s: a record was multicast twice within %v", tc.name, f.minGap)
		}
		if limit := unicastBurst + int(unicastRate*f.elapsed.Seconds()) + 1; f.unicast > limit {
			t.Errorf("%s: %d unicast replies in %.1f s, want at most %d", tc.name, f.unicast, f.elapsed.Seconds(), limit)
		}
		if f.biggestUnicast > replyFactor*len(tc.q) {
			t.Errorf("%s: a %d-byte unicast reply to a %d-byte query", tc.name, f.biggestUnicast, len(tc.q))
		}
	}

	// A flood of WS-Discovery probes from one sender: at most the burst
	// and the rate are answered.
	var pc *net.UDPConn
	netnstest.Do(p.B, func() (err error) {
		pc, err = net.ListenUDP("udp4", &net.UDPAddr{})
		return err
	})
	defer pc.Close()
	start := time.Now()
	for range 300 {
		probe, _ := wsd.ProbeMessage(wsd.NetworkVideoTransmitter)
		pc.WriteToUDP(probe, wsdGroup)
	}
	replies := 0
	for {
		// The first answer may wait for the responder to get through the
		// flood on a busy machine; after it, 700 ms of quiet ends the
		// count.
		wait := 700 * time.Millisecond
		if replies == 0 {
			wait = 15 * time.Second
		}
		pc.SetReadDeadline(time.Now().Add(wait))
		buf := make([]byte, 65536)
		n, _, err := pc.ReadFromUDP(buf)
		if err != nil {
			break
		}
		if m, err := wsd.Parse(buf[:n]); err == nil && m.Action == wsd.ActionProbeMatches {
			replies++
		}
	}
	elapsed := time.Since(start).Seconds()
	t.Logf("WS-Discovery: 300 probes from one sender drew %d replies in %.1f s", replies, elapsed)
	if max := 4 + int(2*elapsed) + 1; replies == 0 || replies > max {
		t.Fatalf("%d replies to a probe flood, want 1 to %d (burst 4, 2/s per sender)", replies, max)
	}
	if cams := browse(); len(cams) != 1 {
		t.Fatalf("after the floods, browse found %+v", cams)
	}
}
