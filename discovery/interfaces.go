package discovery

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
)

// link is an interface chosen for discovery, the addresses announced on
// it and the prefixes of all its addresses (what is on-link there).
type link struct {
	Iface    net.Interface
	Addrs    []netip.Addr
	Prefixes []netip.Prefix
}

// interfaceSource lists the host's interfaces and their addresses; tests
// replace it.
type interfaceSource func() ([]net.Interface, func(*net.Interface) ([]net.Addr, error), error)

func hostInterfaces() ([]net.Interface, func(*net.Interface) ([]net.Addr, error), error) {
	all, err := net.Interfaces()
	return all, (*net.Interface).Addrs, err
}

// selectLinks chooses where to announce. listenHost is the host part of
// camd's listen address; names, when not empty, is the explicit list.
// reason says why nothing was chosen.
func selectLinks(src interfaceSource, listenHost string, names []string) ([]link, string, error) {
	listenIP, _ := netip.ParseAddr(listenHost)
	switch {
	case listenHost == "localhost" || listenIP.IsLoopback():
		return nil, fmt.Sprintf("camd listens on loopback (%s)", listenHost), nil
	case listenHost != "" && !listenIP.IsValid():
		return nil, fmt.Sprintf("listen host %q is not an IP address", listenHost), nil
	}
	all, addrsOf, err := src()
	if err != nil {
		return nil, "", fmt.Errorf("discovery: interfaces: %w", err)
	}
	var out []link
	for _, ifi := range all {
		explicit := slices.Contains(names, ifi.Name)
		if len(names) > 0 && !explicit {
			continue
		}
		if ifi.Flags&net.FlagUp == 0 || ifi.Flags&net.FlagMulticast == 0 {
			continue
		}
		if ifi.Flags&net.FlagLoopback != 0 && !explicit {
			continue
		}
		addrs, err := addrsOf(&ifi)
		if err != nil {
			continue
		}
		l := link{Iface: ifi, Addrs: usable(addrs, listenIP), Prefixes: prefixes(addrs)}
		if len(l.Addrs) > 0 {
			out = append(out, l)
		}
	}
	if len(out) == 0 {
		switch {
		case len(names) > 0:
			return nil, fmt.Sprintf("none of the interfaces %s is up with a multicast-capable address", strings.Join(names, ", ")), nil
		case listenIP.IsValid() && !listenIP.IsUnspecified():
			return nil, fmt.Sprintf("no multicast-capable interface carries %s", listenIP), nil
		}
		return nil, "no multicast-capable interface is up with an address", nil
	}
	return out, "", nil
}

// usable picks the addresses worth announcing: the listen address alone
// when camd listens on one, otherwise IPv4 and global IPv6 addresses, and
// IPv6 link-local ones only when there is no global one.
func usable(addrs []net.Addr, listen netip.Addr) []netip.Addr {
	var v4, v6, v6ll []netip.Addr
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(ipn.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		if ip.IsLoopback() {
			continue
		}
		if listen.IsValid() && !listen.IsUnspecified() {
			if ip == listen.Unmap() {
				return []netip.Addr{ip}
			}
			continue
		}
		switch {
		case ip.Is4():
			v4 = append(v4, ip)
		case ip.IsLinkLocalUnicast():
			v6ll = append(v6ll, ip)
		case ip.IsGlobalUnicast():
			v6 = append(v6, ip)
		}
	}
	if len(v6) == 0 {
		v6 = v6ll
	}
	return append(v4, v6...)
}

// prefixes lists the networks of an interface's addresses.
func prefixes(addrs []net.Addr) []netip.Prefix {
	var out []netip.Prefix
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(ipn.IP)
		ones, bits := ipn.Mask.Size()
		if !ok || bits == 0 {
			continue
		}
		ip = ip.Unmap()
		if ip.Is4() && bits == 128 {
			ones -= 96
		}
		if p, err := ip.Prefix(ones); err == nil && !ip.IsLoopback() {
			out = append(out, p)
		}
	}
	return out
}

// linksKey describes the links so that a change of interface, state or
// address can be seen.
func linksKey(links []link) string {
	var b strings.Builder
	for _, l := range links {
		fmt.Fprintf(&b, "%d:%s:%v:%v;", l.Iface.Index, l.Iface.Name, l.Addrs, l.Prefixes)
	}
	return b.String()
}

func ifaceNames(links []link) []string {
	var out []string
	for _, l := range links {
		out = append(out, l.Iface.Name)
	}
	return out
}

// ChooseInterfaces picks the interfaces to find cameras on by the rules
// Start announces by (docs/discovery.md, "Where camd announces"): none
// when camd listens on loopback, the named ones when names is not empty,
// else those carrying the listen address, or every multicast-capable one
// that is up with an address when it listens on all addresses. With none,
// reason says why.
func ChooseInterfaces(listenHost string, names []string) (ifaces []net.Interface, reason string, err error) {
	links, reason, err := selectLinks(hostInterfaces, listenHost, names)
	for _, l := range links {
		ifaces = append(ifaces, l.Iface)
	}
	return ifaces, reason, err
}
