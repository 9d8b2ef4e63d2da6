package lan

import (
	"context"
	"encoding/xml"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/camd-project/camd/discovery"
	"github.com/camd-project/camd/discovery/internal/mcast"
	"github.com/camd-project/camd/discovery/netnstest"
	"github.com/camd-project/camd/discovery/wsd"
)

func testLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// announce starts a camd camera's announcements (mDNS and WS-Discovery)
// in this process's namespace.
func announce(t *testing.T, name, id string, paired bool) {
	t.Helper()
	a, err := discovery.Start(discovery.Options{
		Name: name, Port: 8443, ID: id, Model: "sim", Firmware: "1.2.3",
		Status:     func() (bool, uint16) { return paired, 77 },
		ListenHost: "0.0.0.0", ONVIF: true, Logger: testLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
}

func eth0(t *testing.T) []net.Interface {
	t.Helper()
	ifi, err := net.InterfaceByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	return []net.Interface{*ifi}
}

// findFrom runs Find in namespace ns, window by window, until done
// accepts what it found (the cameras answer once they have probed for
// their names), for at most 20 s; it returns the last list.
func findFrom(t *testing.T, ns string, window time.Duration, o Options, done func([]Camera) bool) []Camera {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var cams []Camera
		err := netnstest.Do(ns, func() error {
			ifi, err := net.InterfaceByName("eth0")
			if err != nil {
				return err
			}
			o.Interfaces = []net.Interface{*ifi}
			ctx, cancel := context.WithTimeout(context.Background(), window)
			defer cancel()
			cams, err = Find(ctx, o)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if done(cams) || time.Now().After(deadline) {
			return cams
		}
	}
}

func byName(cams []Camera, name string) (Camera, bool) {
	i := slices.IndexFunc(cams, func(c Camera) bool { return c.Name == name })
	if i < 0 {
		return Camera{}, false
	}
	return cams[i], true
}

// TestFindOnALAN: two camd cameras (one paired, one not; each answers
// mDNS and WS-Discovery) and an ONVIF camera of another make in namespace
// A; Find from namespace B lists the three once each, flags which camd
// camera is paired, and leaves out what the NVR added.
func TestFindOnALAN(t *testing.T) {
	p, child := netnstest.InA(t)
	if !child {
		return
	}
	announce(t, "Front Door", "FRONTFRONTFRONT1", false)
	announce(t, "Garage", "GARAGEGARAGEGAR1", true)
	other := "urn:uuid:0a0b0c0d-0000-4000-8000-00000000abcd"
	r, err := wsd.Listen(wsd.Options{Interfaces: eth0(t), Target: func(int, bool) wsd.Target {
		return wsd.Target{Endpoint: other, Types: []xml.Name{wsd.NetworkVideoTransmitter},
			Scopes: []string{wsd.ScopeName + "Porch%20Cam", wsd.ScopeHardware + "IPC-G5"},
			XAddrs: []string{"http://" + p.AddrA + ":8000/onvif/device_service"}, MetadataVersion: 1}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	all := func(cams []Camera) bool {
		f, _ := byName(cams, "Front Door")
		g, _ := byName(cams, "Garage")
		_, o := byName(cams, "Porch Cam")
		return len(f.Via) == 2 && len(g.Via) == 2 && o
	}
	start := time.Now()
	cams := findFrom(t, p.B, 2*time.Second, Options{Logger: testLogger()}, all)
	t.Logf("listed after %v: %+v", time.Since(start).Round(time.Millisecond), cams)
	if !all(cams) || len(cams) != 3 {
		t.Fatalf("found %+v, want Front Door and Garage (by mDNS and WS-Discovery) and Porch Cam, once each", cams)
	}
	addrA := netip.MustParseAddr(p.AddrA)
	f, _ := byName(cams, "Front Door")
	if f.Kind != Camd || f.ID != "FRONTFRONTFRONT1" || f.Paired == nil || *f.Paired || f.Model != "sim" || f.Port != 8443 ||
		f.Endpoint != wsd.EndpointFor(f.ID) || !slices.Contains(f.Addrs, addrA) {
		t.Errorf("front door: %+v", f)
	}
	if g, _ := byName(cams, "Garage"); g.Paired == nil || !*g.Paired {
		t.Errorf("garage (paired): %+v", g)
	}
	o, _ := byName(cams, "Porch Cam")
	if o.Kind != ONVIF || o.ID != "" || o.Paired != nil || o.Model != "IPC-G5" || o.Endpoint != other ||
		len(o.Addrs) == 0 || o.Addrs[0] != addrA || !slices.Equal(o.XAddrs, []string{"http://" + p.AddrA + ":8000/onvif/device_service"}) {
		t.Errorf("porch cam: %+v", o)
	}

	// The NVR has the garage (by device ID) and the porch camera (by the
	// address of its RTSP URL): only the front door is left.
	added := addedSet{ids: []string{"GARAGEGARAGEGAR1"}, addrs: []netip.Addr{addrA}}
	cams = findFrom(t, p.B, 2*time.Second, Options{Added: addedSet{ids: []string{"GARAGEGARAGEGAR1", other}}}, func(cams []Camera) bool {
		_, ok := byName(cams, "Front Door")
		return ok
	})
	if len(cams) != 1 || cams[0].Name != "Front Door" {
		t.Errorf("with the garage and the porch camera added: %+v", cams)
	}
	// An address the NVR added leaves out every camera there (all three
	// share namespace A's address here).
	if cams := findFrom(t, p.B, time.Second, Options{Added: added}, func([]Camera) bool { return true }); len(cams) != 0 {
		t.Errorf("with the address added: %+v", cams)
	}
}

// TestFindBoundsAFlood: a neighbour in namespace A answers every probe
// with thousands of ProbeMatches from 40 addresses, each naming a new
// endpoint and many service URLs, while a camd camera announces there
// too. Find in B keeps at most MaxCameras cameras, 4 service URLs each,
// and still lists the camd camera.
func TestFindBoundsAFlood(t *testing.T) {
	p, child := netnstest.InA(t)
	if !child {
		return
	}
	announce(t, "Front Door", "FRONTFRONTFRONT1", false)

	// 40 more addresses in A, to send from.
	base := netip.MustParseAddr(p.AddrA).As4()
	var senders []*net.UDPConn
	for i := range 40 {
		a := base
		a[3] = byte(100 + i)
		addr := netip.AddrFrom4(a)
		if out, err := exec.Command("ip", "addr", "add", addr.String()+"/24", "dev", "eth0").CombinedOutput(); err != nil {
			t.Fatalf("ip addr add: %v\n%s", err, out)
		}
		c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(addr, 0)))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		senders = append(senders, c)
	}
	group, errs := mcast.Listen4(&net.UDPAddr{IP: wsd.GroupV4.AsSlice(), Port: wsd.Port}, eth0(t), func(c *ipv4.PacketConn) {
		c.SetControlMessage(ipv4.FlagInterface, true)
	})
	if group == nil {
		t.Fatal(errs)
	}
	var flood sync.WaitGroup
	var mu sync.Mutex
	sent := 0
	flood.Go(func() {
		mcast.Read4(group, wsd.MaxMessage, func(d mcast.Datagram) {
			m, err := wsd.Parse(d.B)
			if err != nil || m.Action != wsd.ActionProbe {
				return
			}
			to := net.UDPAddrFromAddrPort(d.From)
			var xaddrs []string
			for i := range 64 {
				xaddrs = append(xaddrs, fmt.Sprintf("http://10.9.%d.%d/onvif/device_service", i/250, i%250))
			}
			n := 0
			for i := range 100 {
				for j, c := range senders {
					t := wsd.Target{Endpoint: fmt.Sprintf("urn:uuid:flood-%s-%d-%d", m.MessageID, i, j),
						Types: []xml.Name{wsd.NetworkVideoTransmitter}, XAddrs: xaddrs}
					if i%2 == 0 {
						t.Endpoint = "urn:uuid:flood-one" // one endpoint, ever more service URLs
						t.XAddrs = []string{fmt.Sprintf("http://10.8.%d.%d/", i, j)}
					}
					c.WriteToUDP(wsd.ProbeMatches(t, m.MessageID, wsd.Sequence{}, true), to)
					n++
				}
			}
			mu.Lock()
			sent += n
			mu.Unlock()
		})
	})
	defer func() { group.Close(); flood.Wait() }()

	cams := findFrom(t, p.B, 3*time.Second, Options{}, func(cams []Camera) bool {
		_, ok := byName(cams, "Front Door")
		return ok
	})
	mu.Lock()
	t.Logf("%d ProbeMatches sent; %d cameras listed", sent, len(cams))
	mu.Unlock()
	if _, ok := byName(cams, "Front Door"); !ok {
		t.Errorf("the camd camera is not listed under the flood")
	}
	if len(cams) > DefaultMaxCameras {
		t.Errorf("%d cameras listed, want at most %d", len(cams), DefaultMaxCameras)
	}
	for _, c := range cams {
		if len(c.XAddrs) > maxXAddrs || len(c.Addrs) > maxAddrs {
			t.Fatalf("%s: %d service URLs, %d addresses", c.Endpoint, len(c.XAddrs), len(c.Addrs))
		}
		if c.Endpoint == "urn:uuid:flood-one" && len(c.XAddrs) != maxXAddrs {
			t.Errorf("the endpoint that kept answering has %d service URLs", len(c.XAddrs))
		}
		if strings.HasPrefix(c.Endpoint, "urn:uuid:flood") && c.Kind != ONVIF {
			t.Errorf("flood answer listed as %s", c.Kind)
		}
	}
}
