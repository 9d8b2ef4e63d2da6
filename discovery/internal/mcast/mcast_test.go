package mcast

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/camd-project/camd/internal/testenv"
)

type fakeConn func(ifi *net.Interface) error

func (f fakeConn) JoinGroup(ifi *net.Interface, _ net.Addr) error { return f(ifi) }
func (f fakeConn) Close() error                                   { return nil }

func TestJoin(t *testing.T) {
	ifaces := []net.Interface{{Index: 1, Name: "eth0"}, {Index: 2, Name: "wlan0"}, {Index: 3, Name: "eth1"}}
	refused := errors.New("refused")
	joined, errs := join(fakeConn(func(ifi *net.Interface) error {
		if ifi.Name == "wlan0" {
			return refused
		}
		return nil
	}), ifaces, &net.UDPAddr{IP: net.IPv4(224, 0, 0, 251)})
	if joined != 2 || len(errs) != 1 || !errors.Is(errs[0], refused) || errs[0].Error() != "wlan0: refused" {
		t.Fatalf("joined %d, errors %v; want 2 and wlan0's", joined, errs)
	}
}

// TestRead sends a datagram to a loopback socket of each family and reads
// it back with its sender, destination and interface; closing the socket
// ends the read.
func TestRead(t *testing.T) {
	lo, err := net.InterfaceByName("lo")
	testenv.Need(t, err == nil, "no loopback interface named lo: %v", err)
	tests := []struct {
		name    string
		network string
		addr    netip.Addr
		// open sets the socket options and returns the read
		open func(c net.PacketConn) (func(handle func(Datagram)), error)
	}{
		{"IPv4", "udp4", netip.MustParseAddr("127.0.0.1"), func(c net.PacketConn) (func(func(Datagram)), error) {
			p := ipv4.NewPacketConn(c)
			err := p.SetControlMessage(ipv4.FlagInterface|ipv4.FlagDst, true)
			return func(handle func(Datagram)) { Read4(p, 1500, handle) }, err
		}},
		{"IPv6", "udp6", netip.MustParseAddr("::1"), func(c net.PacketConn) (func(func(Datagram)), error) {
			p := ipv6.NewPacketConn(c)
			err := p.SetControlMessage(ipv6.FlagInterface|ipv6.FlagDst, true)
			return func(handle func(Datagram)) { Read6(p, 1500, handle) }, err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.ListenUDP(tt.network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(tt.addr, 0)))
			testenv.Need(t, err == nil, "no %s loopback: %v", tt.name, err)
			read, err := tt.open(c)
			if err != nil {
				t.Fatal(err)
			}
			got := make(chan Datagram, 1)
			done := make(chan struct{})
			go func() {
				defer close(done)
				read(func(d Datagram) {
					d.B = append([]byte(nil), d.B...)
					select {
					case got <- d:
					default:
					}
				})
			}()
			sender, err := net.DialUDP(tt.network, nil, c.LocalAddr().(*net.UDPAddr))
			if err != nil {
				t.Fatal(err)
			}
			defer sender.Close()
			if _, err := sender.Write([]byte("hello")); err != nil {
				t.Fatal(err)
			}
			select {
			case d := <-got:
				from := sender.LocalAddr().(*net.UDPAddr).AddrPort()
				if string(d.B) != "hello" || d.From != netip.AddrPortFrom(from.Addr().Unmap(), from.Port()) || d.Dst != tt.addr || d.IfIndex != lo.Index {
					t.Errorf("got %q from %v to %v on %d; want hello from %v to %v on %d", d.B, d.From, d.Dst, d.IfIndex, from, tt.addr, lo.Index)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("nothing read")
			}
			c.Close()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("the read went on after the socket closed")
			}
		})
	}
}

// TestListenNoInterface: a socket that joins the group nowhere is closed
// and not returned; each interface's failure is named.
func TestListenNoInterface(t *testing.T) {
	nope := []net.Interface{{Index: 99999, Name: "nope0"}}
	set := false
	p4, errs := Listen4(&net.UDPAddr{IP: net.IPv4(239, 255, 0, 77)}, nope, func(*ipv4.PacketConn) { set = true })
	if p4 != nil || len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), "nope0: ") || !set {
		t.Errorf("IPv4: socket %v, errors %v, options set %t", p4, errs, set)
	}
	p6, errs := Listen6(&net.UDPAddr{IP: net.ParseIP("ff02::77")}, nope, func(*ipv6.PacketConn) {})
	if p6 != nil || len(errs) != 1 {
		t.Errorf("IPv6: socket %v, errors %v", p6, errs)
	}
}
