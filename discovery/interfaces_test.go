package discovery

import (
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// fakeHost is a host with lo, eth0 (v4 + global v6 + link-local), wlan0
// (v4 + link-local only) and a down eth1.
func fakeHost() ([]net.Interface, func(*net.Interface) ([]net.Addr, error), error) {
	ifs := []net.Interface{
		{Index: 1, Name: "lo", Flags: net.FlagUp | net.FlagLoopback},
		{Index: 2, Name: "eth0", Flags: net.FlagUp | net.FlagMulticast | net.FlagBroadcast},
		{Index: 3, Name: "wlan0", Flags: net.FlagUp | net.FlagMulticast},
		{Index: 4, Name: "eth1", Flags: net.FlagMulticast},
		{Index: 5, Name: "tun0", Flags: net.FlagUp | net.FlagPointToPoint},
	}
	addrs := map[string][]string{
		"lo":    {"127.0.0.1/8", "::1/128"},
		"eth0":  {"192.168.1.20/24", "2001:db8::20/64", "fe80::20/64"},
		"wlan0": {"10.0.0.5/24", "fe80::5/64"},
		"eth1":  {"172.16.0.1/24"},
		"tun0":  {"10.8.0.2/32"},
	}
	return ifs, func(ifi *net.Interface) ([]net.Addr, error) {
		var out []net.Addr
		for _, a := range addrs[ifi.Name] {
			ip, n, _ := net.ParseCIDR(a)
			n.IP = ip
			out = append(out, n)
		}
		return out, nil
	}, nil
}

func TestSelectLinks(t *testing.T) {
	for _, tc := range []struct {
		listen string
		names  []string
		want   string // "eth0=addr,addr wlan0=…" or "none: reason substring"
	}{
		{"127.0.0.1", nil, "none: loopback"},
		{"::1", nil, "none: loopback"},
		{"localhost", nil, "none: loopback"},
		{"127.0.0.1", []string{"eth0"}, "none: loopback"},
		{"0.0.0.0", nil, "eth0=192.168.1.20,2001:db8::20 wlan0=10.0.0.5,fe80::5"},
		{"", nil, "eth0=192.168.1.20,2001:db8::20 wlan0=10.0.0.5,fe80::5"},
		{"::", nil, "eth0=192.168.1.20,2001:db8::20 wlan0=10.0.0.5,fe80::5"},
		{"10.0.0.5", nil, "wlan0=10.0.0.5"},
		{"2001:db8::20", nil, "eth0=2001:db8::20"},
		{"10.9.9.9", nil, "none: no multicast-capable interface carries 10.9.9.9"},
		{"0.0.0.0", []string{"wlan0"}, "wlan0=10.0.0.5,fe80::5"},
		{"0.0.0.0", []string{"eth1"}, "none: none of the interfaces eth1"},
		{"0.0.0.0", []string{"tun0"}, "none: none of the interfaces"},
		{"192.168.1.20", []string{"wlan0"}, "none: none of the interfaces wlan0"},
	} {
		t.Run(tc.listen+"/"+strings.Join(tc.names, ","), func(t *testing.T) {
			links, reason, err := selectLinks(fakeHost, tc.listen, tc.names)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, l := range links {
				var a []string
				for _, ip := range l.Addrs {
					a = append(a, ip.String())
				}
				got = append(got, l.Iface.Name+"="+strings.Join(a, ","))
			}
			if r, ok := strings.CutPrefix(tc.want, "none: "); ok {
				if len(links) != 0 || !strings.Contains(reason, r) {
					t.Fatalf("links %v, reason %q; want none because %q", got, reason, r)
				}
				return
			}
			if strings.Join(got, " ") != tc.want {
				t.Fatalf("links %v, want %s", got, tc.want)
			}
		})
	}
}

func TestLinksKeyChangesWithAddress(t *testing.T) {
	a := []link{{Iface: net.Interface{Index: 2, Name: "eth0"}, Addrs: []netip.Addr{netip.MustParseAddr("10.0.0.1")}}}
	b := slices.Clone(a)
	b[0].Addrs = []netip.Addr{netip.MustParseAddr("10.0.0.2")}
	if linksKey(a) == linksKey(b) {
		t.Fatal("an address change is not seen")
	}
}
