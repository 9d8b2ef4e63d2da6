package wsd

import (
	"context"
	"encoding/xml"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/net/ipv4"

	"github.com/camd-project/camd/discovery/netnstest"
)

// TestResponderOnALAN runs a responder in namespace A of a test LAN and
// probes it from namespace B, by hand and with Probe. Neither leaves a
// goroutine behind.
func TestResponderOnALAN(t *testing.T) {
	p := netnstest.NewPair(t)
	ignore := goleak.IgnoreCurrent()
	// eth0 is the namespace's end of the veth pair; call it inside Do.
	eth0 := func() ([]net.Interface, error) {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return nil, err
		}
		return []net.Interface{*ifi}, nil
	}
	var r *Responder
	if err := netnstest.Do(p.A, func() error {
		ifaces, err := eth0()
		if err != nil {
			return err
		}
		r, err = Listen(Options{Interfaces: ifaces, Target: func(int, bool) Target {
			return Target{Endpoint: EndpointFor("ABCDEFGHIJKLMNOP"), Types: []xml.Name{NetworkVideoTransmitter},
				XAddrs: []string{"https://" + p.AddrA + ":8443/"}, MetadataVersion: 1}
		}})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	end := time.Now().Add(time.Hour)
	if d, ok := t.Deadline(); ok {
		end = d.Add(-5 * time.Second)
	}

	// The ONVIF spec's example Probe, by hand, to the IPv4 group.
	var m *Message
	var from netip.AddrPort
	if err := netnstest.Do(p.B, func() error {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{})
		if err != nil {
			return err
		}
		defer c.Close()
		if _, err := c.WriteToUDP([]byte(specProbe), net.UDPAddrFromAddrPort(netip.AddrPortFrom(GroupV4, Port))); err != nil {
			return err
		}
		c.SetReadDeadline(end)
		buf := make([]byte, MaxMessage)
		n, a, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return err
		}
		from = a
		m, err = Parse(buf[:n])
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if m.Action != ActionProbeMatches || m.RelatesTo != "uuid:84ede3de-7dec-11d0-c360-f01234567890" || from.Addr().Unmap().String() != p.AddrA {
		t.Fatalf("answer from %v: %+v", from, m)
	}

	// Probe, until the responder has answered it.
	var found []Found
	if err := netnstest.Do(p.B, func() error {
		ifaces, err := eth0()
		if err != nil {
			return err
		}
		ctx, cancel := context.WithDeadline(context.Background(), end)
		defer cancel()
		go func() {
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			for r.Stats().Answered < 2 {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
			}
			cancel()
		}()
		found, err = Probe(ctx, ProbeOptions{Interfaces: ifaces})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	// The answer may still be on its way when Probe stops: it found the
	// camera or nothing.
	if len(found) > 1 || len(found) == 1 && found[0].Endpoint != EndpointFor("ABCDEFGHIJKLMNOP") {
		t.Fatalf("Probe found %+v", found)
	}
	t.Logf("Probe found %d device(s); responder stats %+v", len(found), r.Stats())
	r.Close()
	goleak.VerifyNone(t, ignore)
}

// TestProbeBoundsAFlood: a neighbour in namespace A answers every probe
// from B with 2000 ProbeMatches, each a new endpoint or one endpoint with
// ever more service URLs. Probe reads at most the per-sender burst and
// rate of them, and keeps at most 8 service URLs and MaxDevices devices.
func TestProbeBoundsAFlood(t *testing.T) {
	p := netnstest.NewPair(t)
	ignore := goleak.IgnoreCurrent()
	var flooder *net.UDPConn
	if err := netnstest.Do(p.A, func() (err error) {
		flooder, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4zero, Port: Port})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	sent := make(chan int, 1)
	go func() {
		buf := make([]byte, MaxMessage)
		n := 0
		defer func() { sent <- n }()
		for {
			k, from, err := flooder.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			m, err := Parse(buf[:k])
			if err != nil || m.Action != ActionProbe {
				continue
			}
			for i := range 2000 {
				tg := Target{Endpoint: fmt.Sprintf("urn:uuid:flood-%d", i), Types: []xml.Name{NetworkVideoTransmitter}}
				if i%2 == 0 {
					tg.Endpoint = "urn:uuid:flood-one"
				}
				tg.XAddrs = []string{fmt.Sprintf("http://10.9.%d.%d/", i/250, i%250)}
				flooder.WriteToUDPAddrPort(ProbeMatches(tg, m.MessageID, Sequence{}, true), from)
				n++
			}
		}
	}()
	// The probe goes to the group: join it in A.
	if err := netnstest.Do(p.A, func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		return ipv4.NewPacketConn(flooder).JoinGroup(ifi, &net.UDPAddr{IP: GroupV4.AsSlice()})
	}); err != nil {
		t.Fatal(err)
	}

	for _, max := range []int{0, 5} {
		var found []Found
		window := time.Second
		if err := netnstest.Do(p.B, func() error {
			ifi, err := net.InterfaceByName("eth0")
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(context.Background(), window)
			defer cancel()
			found, err = Probe(ctx, ProbeOptions{Interfaces: []net.Interface{*ifi}, MaxDevices: max})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		for _, f := range found {
			if len(f.XAddrs) > maxXAddrs {
				t.Errorf("%s kept %d service URLs, want at most %d", f.Endpoint, len(f.XAddrs), maxXAddrs)
			}
		}
		limit := perSenderBurst + int(perSenderRate*window.Seconds()) + 1
		if max > 0 {
			limit = max
		}
		t.Logf("MaxDevices %d: %d devices kept", max, len(found))
		if len(found) == 0 || len(found) > limit {
			t.Errorf("MaxDevices %d: %d devices kept from one flooding sender in %v, want 1 to %d", max, len(found), window, limit)
		}
	}
	flooder.Close()
	t.Logf("the flooder sent %d ProbeMatches", <-sent)
	goleak.VerifyNone(t, ignore)
}
