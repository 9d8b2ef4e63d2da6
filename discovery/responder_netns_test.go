package discovery

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/grandcat/zeroconf"
	"github.com/miekg/dns"
	"go.uber.org/goleak"

	"github.com/camd-project/camd/discovery/netnstest"
)

// TestResponderIgnoresOffLinkSources sends, from namespace B, queries
// that ask for a unicast reply (QU to the group, a query to the camera's
// own address, a one-shot resolver's query) from an address on the link
// and from one off it: only the first get a reply. The camera has a route
// to the off-link address (through the link), so a reply would arrive.
func TestResponderIgnoresOffLinkSources(t *testing.T) {
	p, child := netnstest.InA(t)
	if !child {
		return
	}
	var subnet int
	fmt.Sscanf(p.AddrA, "10.231.%d.1", &subnet)
	off4 := fmt.Sprintf("198.18.%d.2", subnet)
	off6 := fmt.Sprintf("fd00:dead:%x::2", subnet)
	for _, args := range [][]string{
		{"-n", p.B, "addr", "add", off4 + "/32", "dev", "eth0"},
		{"-n", p.B, "addr", "add", off6 + "/128", "dev", "eth0", "nodad"},
		{"-6", "route", "add", "default", "dev", "eth0"}, // in A: a way back to off6
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	ignore := goleak.IgnoreCurrent()
	a, err := Start(Options{Name: "Cam", Port: 8443, ID: "ABCDEFGHIJKLMNOP", ListenHost: "0.0.0.0", Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	// Once the camera has probed for its name and announced it, a QU
	// question draws a unicast reply.
	listedFrom(t, p.B, func(Camera) bool { return true })

	qu := quQuery()
	legacy := func() []byte {
		m := new(dns.Msg)
		m.SetQuestion(serviceName, dns.TypePTR)
		m.Id = 77
		b, _ := m.Pack()
		return b
	}()
	for _, tc := range []struct {
		name, from string
		port       int
		to         string
		q          []byte
		reply      bool
	}{
		{"QU from on-link", p.AddrB, 5353, "224.0.0.251", qu, true},
		{"QU from off-link", off4, 5353, "224.0.0.251", qu, false},
		{"direct from on-link", p.AddrB, 5353, p.AddrA, qu, true},
		{"direct from off-link", off4, 5353, p.AddrA, qu, false},
		{"legacy from on-link", p.AddrB, 0, "224.0.0.251", legacy, true},
		{"legacy from off-link", off4, 0, "224.0.0.251", legacy, false},
		{"legacy direct from off-link", off4, 0, p.AddrA, legacy, false},
		{"IPv6 QU from on-link", p.AddrB6, 5353, "ff02::fb", qu, true},
		{"IPv6 QU from off-link", off6, 5353, "ff02::fb", qu, false},
		{"IPv6 direct from off-link", off6, 5353, p.AddrA6, qu, false},
		{"IPv6 legacy from off-link", off6, 0, "ff02::fb", legacy, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c *net.UDPConn
			if err := netnstest.Do(p.B, func() (err error) {
				c, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(tc.from), Port: tc.port})
				return err
			}); err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			to := &net.UDPAddr{IP: net.ParseIP(tc.to), Port: 5353}
			if to.IP.IsMulticast() && to.IP.To4() == nil {
				to.Zone = "eth0"
			}
			if _, err := c.WriteToUDP(tc.q, to); err != nil {
				t.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(time.Second))
			buf := make([]byte, 9000)
			n, from, err := c.ReadFromUDP(buf)
			switch {
			case tc.reply && err != nil:
				t.Fatalf("no reply: %v", err)
			case !tc.reply && err == nil:
				t.Fatalf("a %d-byte reply from %v to off-link %s", n, from, tc.from)
			case tc.reply:
				var m dns.Msg
				if err := m.Unpack(buf[:n]); err != nil || !m.Response || len(m.Answer) == 0 || from.Port != 5353 {
					t.Fatalf("reply from %v: %v %v", from, &m, err)
				}
				if n > replyFactor*len(tc.q) {
					t.Errorf("a %d-byte reply to a %d-byte query", n, len(tc.q))
				}
			}
		})
	}
	a.Close()
	goleak.VerifyNone(t, ignore)
}

// TestZeroconfFindsResponder browses from namespace B with another
// implementation, zeroconf's querier: it finds the camera, its port, TXT
// and address.
func TestZeroconfFindsResponder(t *testing.T) {
	p, child := netnstest.InA(t)
	if !child {
		return
	}
	a, err := Start(Options{Name: "Front Door", Port: 8443, ID: "ABCDEFGHIJKLMNOP", Model: "sim", ListenHost: "0.0.0.0", Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	time.Sleep(100 * time.Millisecond) // zeroconf asks while the camera probes: it finds it by the announcement

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	entries := make(chan *zeroconf.ServiceEntry, 8)
	var r *zeroconf.Resolver
	if err := netnstest.Do(p.B, func() (err error) {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		r, err = zeroconf.NewResolver(zeroconf.SelectIfaces([]net.Interface{*ifi}))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := r.Browse(ctx, ServiceType, "local.", entries); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-entries:
		t.Logf("zeroconf found %q after %v: %s:%d %v %v %v", e.Instance, time.Since(start).Round(time.Millisecond), e.HostName, e.Port, e.AddrIPv4, e.AddrIPv6, e.Text)
		info, ok := ParseTXT(e.Text)
		if e.Instance != `Front\ Door` || e.Port != 8443 || e.HostName != "camd-abcdefgh.local." || !ok || info.ID != "ABCDEFGHIJKLMNOP" || info.Model != "sim" {
			t.Errorf("entry %+v", e)
		}
		if !slices.ContainsFunc(e.AddrIPv4, func(ip net.IP) bool { return ip.String() == p.AddrA }) {
			t.Errorf("addresses %v, want %s", e.AddrIPv4, p.AddrA)
		}
		if !slices.ContainsFunc(e.AddrIPv6, func(ip net.IP) bool { a, _ := netip.AddrFromSlice(ip); return a.String() == p.AddrA6 }) {
			t.Errorf("addresses %v, want %s", e.AddrIPv6, p.AddrA6)
		}
	case <-ctx.Done():
		t.Fatal("zeroconf found nothing within 5 s")
	}
	cancel()
}
