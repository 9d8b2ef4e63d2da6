package discovery

import (
	"net"
	"net/netip"
	"slices"
	"testing"
)

// TestWSDiscoveryPointsToTheDeviceService: with an ONVIF service the
// ProbeMatch's XAddrs are its device service URL on the probe's
// interface (plain HTTP) and the scopes claim Profile S; without one,
// the HTTPS address as before.
func TestWSDiscoveryPointsToTheDeviceService(t *testing.T) {
	links := []link{
		{Iface: net.Interface{Index: 2, Name: "eth0"}, Addrs: []netip.Addr{netip.MustParseAddr("192.168.1.20"), netip.MustParseAddr("fe80::1")}},
		{Iface: net.Interface{Index: 3, Name: "wlan0"}, Addrs: []netip.Addr{netip.MustParseAddr("10.0.0.5")}},
	}
	for _, tc := range []struct {
		onvifPort int
		v6        bool
		want      []string
		profileS  bool
	}{
		{8080, false, []string{"http://192.168.1.20:8080/onvif/device_service"}, true},
		{80, true, []string{"http://[fe80::1]:80/onvif/device_service"}, true},
		{0, false, []string{"https://192.168.1.20:8443/"}, false},
	} {
		a := &Announcer{o: Options{Port: 8443, ONVIFPort: tc.onvifPort, Model: "generic"}}
		got := a.target("Front Door", links, 1)(2, tc.v6)
		if !slices.Equal(got.XAddrs, tc.want) {
			t.Errorf("ONVIF port %d: XAddrs %v, want %v", tc.onvifPort, got.XAddrs, tc.want)
		}
		if has := slices.Contains(got.Scopes, "onvif://www.onvif.org/Profile/Streaming"); has != tc.profileS {
			t.Errorf("ONVIF port %d: scopes %v: Profile S %v, want %v", tc.onvifPort, got.Scopes, has, tc.profileS)
		}
		if !slices.Contains(got.Scopes, "onvif://www.onvif.org/name/Front%20Door") {
			t.Errorf("scopes %v lack the name", got.Scopes)
		}
	}
}
