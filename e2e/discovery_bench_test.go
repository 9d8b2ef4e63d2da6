package e2e

import (
	"bufio"
	"encoding/json"
	"net"
	"path/filepath"
	"slices"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/camd-project/camd/discovery/netnstest"
)

// sniffer counts, in namespace ns, the mDNS and WS-Discovery datagrams
// that arrive on eth0 (IPv4 and IPv6), and notes when the first mDNS
// response naming _camd._tcp arrived.
type sniffer struct {
	packets  atomic.Int64
	announce chan time.Time
	conns    []net.PacketConn
}

func sniff(b testing.TB, ns string) *sniffer {
	b.Helper()
	s := &sniffer{announce: make(chan time.Time, 16)}
	err := netnstest.Do(ns, func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		for _, g := range []struct {
			ip   net.IP
			port int
		}{{net.IPv4(224, 0, 0, 251), 5353}, {net.IPv4(239, 255, 255, 250), 3702}, {net.ParseIP("ff02::fb"), 5353}, {net.ParseIP("ff02::c"), 3702}} {
			network := "udp4"
			if g.ip.To4() == nil {
				network = "udp6"
			}
			c, err := net.ListenUDP(network, &net.UDPAddr{IP: g.ip, Port: g.port})
			if err != nil {
				return err
			}
			if network == "udp4" {
				err = ipv4.NewPacketConn(c).JoinGroup(ifi, &net.UDPAddr{IP: g.ip})
			} else {
				err = ipv6.NewPacketConn(c).JoinGroup(ifi, &net.UDPAddr{IP: g.ip})
			}
			if err != nil {
				return err
			}
			s.conns = append(s.conns, c)
			go s.read(c, g.port == 5353)
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		for _, c := range s.conns {
			c.Close()
		}
	})
	return s
}

func (s *sniffer) read(c *net.UDPConn, mdns bool) {
	buf := make([]byte, 65536)
	for {
		n, _, err := c.ReadFromUDP(buf)
		if err != nil {
			return
		}
		s.packets.Add(1)
		if !mdns {
			continue
		}
		var m dns.Msg
		if m.Unpack(buf[:n]) != nil || !m.Response {
			continue
		}
		for _, rr := range m.Answer {
			if ptr, ok := rr.(*dns.PTR); ok && ptr.Hdr.Name == "_camd._tcp.local." && ptr.Hdr.Ttl > 0 {
				select {
				case s.announce <- time.Now():
				default:
				}
				break
			}
		}
	}
}

func reportSpread(b *testing.B, unit string, samples []float64) {
	slices.Sort(samples)
	var sum float64
	for _, v := range samples {
		sum += v
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(sum/float64(len(samples)), unit+"_mean")
	b.ReportMetric(percentile(samples, 0.5), unit+"_p50")
	b.ReportMetric(samples[len(samples)-1], unit+"_max")
}

// BenchmarkDiscoveryFirstAnnouncement measures, from starting the camd
// process in one namespace, the time until the other namespace receives
// its first mDNS announcement of _camd._tcp. camd probes for its name
// first (RFC 6762 §8.1: 0–250 ms, then 750 ms), so about 0.8–1.1 s. Run
// with -benchtime=10x.
func BenchmarkDiscoveryFirstAnnouncement(b *testing.B) {
	p := netnstest.NewPair(b)
	s := sniff(b, p.B)
	var samples []float64
	for range b.N {
		for len(s.announce) > 0 {
			<-s.announce
		}
		start := time.Now()
		d := startInNetns(b, p.A)
		select {
		case at := <-s.announce:
			samples = append(samples, float64(at.Sub(start).Microseconds())/1000)
		case <-time.After(10 * time.Second):
			b.Fatal("no announcement within 10 s")
		}
		d.stop()
	}
	reportSpread(b, "ms_to_announce", samples)
}

// BenchmarkDiscoveryCamctlLists measures the time from starting
// `camctl discover` in one namespace until it lists the camd camera
// running in the other. Run with -benchtime=10x.
func BenchmarkDiscoveryCamctlLists(b *testing.B) {
	p := netnstest.NewPair(b)
	startInNetns(b, p.A)
	time.Sleep(5 * time.Second) // past the probes (up to 1 s) and the start-up announcements (+1 s, +3 s)
	var total, browse []float64
	for i := range b.N {
		if i > 0 {
			// As a user runs it: not faster than the unicast replies
			// camd gives one address (2 a second, a burst of 4), past
			// which it answers by multicast, at most once a second.
			time.Sleep(time.Second)
		}
		start := time.Now()
		cmd := netnstest.Command(p.B, filepath.Join(bin, "camctl"), "discover", "--watch", "--json", "--timeout", "10s")
		out, err := cmd.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		if !sc.Scan() {
			b.Fatal("camctl discover listed nothing")
		}
		total = append(total, float64(time.Since(start).Microseconds())/1000)
		var e watchEvent
		json.Unmarshal(sc.Bytes(), &e)
		browse = append(browse, e.AfterMs)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
	}
	reportSpread(b, "ms_to_list", total)
	b.ReportMetric(percentile(browse, 0.5), "ms_browse_p50")
}

// BenchmarkDiscoveryIdlePackets counts the multicast datagrams (mDNS and
// WS-Discovery, IPv4 and IPv6) a camd camera sends in its first 10 s and
// then in 30 s of idling with no one asking, and reports the idle rate
// per hour. Run with -benchtime=1x.
func BenchmarkDiscoveryIdlePackets(b *testing.B) {
	const idle = 30 * time.Second
	for range b.N {
		p := netnstest.NewPair(b)
		s := sniff(b, p.B)
		d := startInNetns(b, p.A)
		time.Sleep(10 * time.Second)
		startup := s.packets.Load()
		time.Sleep(idle)
		idlePackets := s.packets.Load() - startup
		d.stop()
		b.ReportMetric(0, "ns/op")
		b.ReportMetric(float64(startup), "packets_first_10s")
		b.ReportMetric(float64(idlePackets)*float64(time.Hour/idle), "packets/hour_idle")
	}
}
