package mcast

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// Listen4 opens a UDP socket bound to group (a multicast address and
// port), lets set set its options, and joins the group on each of ifaces.
// It returns the socket, or nil when no interface joined, and the errors:
// the socket's, or one naming each interface that did not join.
func Listen4(group *net.UDPAddr, ifaces []net.Interface, set func(*ipv4.PacketConn)) (*ipv4.PacketConn, []error) {
	return listen("udp4", group, ifaces, ipv4.NewPacketConn, set)
}

// Listen6 is Listen4 for IPv6.
func Listen6(group *net.UDPAddr, ifaces []net.Interface, set func(*ipv6.PacketConn)) (*ipv6.PacketConn, []error) {
	return listen("udp6", group, ifaces, ipv6.NewPacketConn, set)
}

// groupConn is an *ipv4.PacketConn or an *ipv6.PacketConn.
type groupConn interface {
	JoinGroup(ifi *net.Interface, group net.Addr) error
	Close() error
}

func listen[C groupConn](network string, group *net.UDPAddr, ifaces []net.Interface, wrap func(net.PacketConn) C, set func(C)) (C, []error) {
	var none C
	c, err := net.ListenUDP(network, group)
	if err != nil {
		return none, []error{err}
	}
	p := wrap(c)
	set(p)
	joined, errs := join(p, ifaces, &net.UDPAddr{IP: group.IP})
	if joined == 0 {
		p.Close()
		return none, errs
	}
	return p, errs
}

// join joins group through c on each of ifaces. It returns how many
// joined, and an error naming the interface for each of the others.
func join(c groupConn, ifaces []net.Interface, group net.Addr) (joined int, errs []error) {
	for _, ifi := range ifaces {
		if err := c.JoinGroup(&ifi, group); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", ifi.Name, err))
			continue
		}
		joined++
	}
	return joined, errs
}

// Datagram is one datagram read: its bytes (in the reader's buffer, valid
// until the handler returns), its sender, the address it was sent to (a
// group or one of ours) and the interface it came in on.
type Datagram struct {
	B       []byte
	From    netip.AddrPort
	Dst     netip.Addr
	IfIndex int
}

// Read4 reads c, in a buffer of size bytes, and calls handle with each
// datagram until c is closed. c delivers the interface
// (ipv4.FlagInterface) and, if asked to, the destination (ipv4.FlagDst;
// otherwise Dst is the zero Addr). Addresses are unmapped.
func Read4(c *ipv4.PacketConn, size int, handle func(Datagram)) {
	read(c, size, false, func(cm *ipv4.ControlMessage) (net.IP, int) { return cm.Dst, cm.IfIndex }, handle)
}

// Read6 is Read4 for IPv6 (ipv6.FlagInterface, ipv6.FlagDst). A sender's
// zone is kept; a datagram from an IPv4-mapped address is passed over: the
// IPv4 socket has it.
func Read6(c *ipv6.PacketConn, size int, handle func(Datagram)) {
	read(c, size, true, func(cm *ipv6.ControlMessage) (net.IP, int) { return cm.Dst, cm.IfIndex }, handle)
}

// packetConn is an *ipv4.PacketConn (CM ipv4.ControlMessage) or an
// *ipv6.PacketConn.
type packetConn[CM any] interface {
	ReadFrom(b []byte) (n int, cm *CM, src net.Addr, err error)
}

// read calls handle with each datagram c reads until c is closed; ctl
// gives a control message's destination and interface. A datagram without
// a control message is passed over, and so are errors other than
// net.ErrClosed.
func read[CM any](c packetConn[CM], size int, v6 bool, ctl func(*CM) (net.IP, int), handle func(Datagram)) {
	buf := make([]byte, size)
	for {
		n, cm, from, err := c.ReadFrom(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		ua, ok := from.(*net.UDPAddr)
		if err != nil || cm == nil || !ok {
			continue
		}
		src, _ := netip.AddrFromSlice(ua.IP)
		if v6 && src.Is4In6() {
			continue
		}
		dstIP, ifIndex := ctl(cm)
		dst, _ := netip.AddrFromSlice(dstIP)
		handle(Datagram{B: buf[:n], From: netip.AddrPortFrom(src.Unmap().WithZone(ua.Zone), uint16(ua.Port)), Dst: dst.Unmap(), IfIndex: ifIndex})
	}
}
