package lan

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/camd-project/camd/discovery"
	"github.com/camd-project/camd/discovery/wsd"
)

// addedSet is a fake NVR catalog: device IDs or endpoints, and addresses.
type addedSet struct {
	ids   []string
	addrs []netip.Addr
}

func (s addedSet) Added(id string, addrs []netip.Addr) bool {
	return slices.Contains(s.ids, id) || slices.ContainsFunc(addrs, func(a netip.Addr) bool { return slices.Contains(s.addrs, a) })
}

func camdCamera(name, id string, paired bool, addr string) discovery.Camera {
	return discovery.Camera{Name: name, Info: discovery.Info{ID: id, Model: "sim", Firmware: "1.0", Paired: paired},
		Port: 8443, Addrs: []netip.Addr{netip.MustParseAddr(addr)}}
}

func onvifDevice(endpoint, name, from string, xaddrs ...string) wsd.Found {
	return wsd.Found{Match: wsd.Match{Endpoint: endpoint, XAddrs: xaddrs,
		Scopes: []string{wsd.ScopeName + strings.ReplaceAll(name, " ", "%20"), wsd.ScopeHardware + "IPC-1"}},
		From: netip.MustParseAddr(from)}
}

func TestMerge(t *testing.T) {
	front := camdCamera("Front Door", "FRONTFRONTFRONT1", false, "10.0.0.21")
	garage := camdCamera("Garage", "GARAGEGARAGEGAR1", true, "10.0.0.22")
	self := camdCamera("NVR", "SELFSELFSELFSEL1", true, "10.0.0.2")
	// Front door answers the probe too, under its derived endpoint.
	frontWSD := onvifDevice(wsd.EndpointFor(front.ID), "Front Door", "10.0.0.21", "http://10.0.0.21:8000/onvif/device_service")
	other := onvifDevice("urn:uuid:1111", "Porch Cam", "10.0.0.30", "http://10.0.0.30/onvif/device_service", "http://[fd00::30]/onvif/device_service")
	selfWSD := onvifDevice(wsd.EndpointFor(self.ID), "NVR", "10.0.0.2")

	got := merge([]discovery.Camera{garage, front, self}, []wsd.Found{frontWSD, other, selfWSD}, Options{Self: self.ID})
	var names []string
	for _, c := range got {
		names = append(names, fmt.Sprintf("%s:%s:%v", c.Kind, c.Name, c.Via))
	}
	want := []string{"camd:Front Door:[mdns ws-discovery]", "camd:Garage:[mdns]", "onvif:Porch Cam:[ws-discovery]"}
	if !slices.Equal(names, want) {
		t.Fatalf("merged %v, want %v", names, want)
	}
	f, g, o := got[0], got[1], got[2]
	if f.ID != front.ID || f.Endpoint != wsd.EndpointFor(front.ID) || *f.Paired || f.Port != 8443 || f.Model != "sim" ||
		!slices.Equal(f.Addrs, front.Addrs) || !slices.Equal(f.XAddrs, frontWSD.XAddrs) {
		t.Errorf("front door: %+v", f)
	}
	if !*g.Paired || g.Endpoint != "" {
		t.Errorf("garage: %+v", g)
	}
	wantAddrs := []netip.Addr{netip.MustParseAddr("10.0.0.30"), netip.MustParseAddr("fd00::30")}
	if o.ID != "" || o.Paired != nil || o.Model != "IPC-1" || o.Endpoint != "urn:uuid:1111" || !slices.Equal(o.Addrs, wantAddrs) {
		t.Errorf("porch cam: %+v", o)
	}

	// The NVR's catalog leaves out what it has: a camd camera by ID, an
	// ONVIF one by endpoint or by address.
	for _, c := range []struct {
		name  string
		added addedSet
		want  []string
	}{
		{"camd by ID", addedSet{ids: []string{front.ID}}, []string{"Garage", "Porch Cam"}},
		{"ONVIF by endpoint", addedSet{ids: []string{"urn:uuid:1111"}}, []string{"Front Door", "Garage"}},
		{"ONVIF by address", addedSet{addrs: []netip.Addr{netip.MustParseAddr("fd00::30")}}, []string{"Front Door", "Garage"}},
		{"nothing", addedSet{}, []string{"Front Door", "Garage", "Porch Cam"}},
	} {
		got := merge([]discovery.Camera{garage, front}, []wsd.Found{frontWSD, other}, Options{Added: c.added})
		var names []string
		for _, c := range got {
			names = append(names, c.Name)
		}
		if !slices.Equal(names, c.want) {
			t.Errorf("%s: %v, want %v", c.name, names, c.want)
		}
	}
}

// TestMergeBounds: whatever the answers, the list, each camera's
// addresses and service URLs, and its strings stay bounded.
func TestMergeBounds(t *testing.T) {
	var cams []discovery.Camera
	for i := range 300 {
		cams = append(cams, camdCamera(fmt.Sprintf("cam %03d", i), fmt.Sprintf("ID%014d", i), false, "10.0.0.1"))
	}
	var found []wsd.Found
	for i := range 300 {
		found = append(found, onvifDevice(fmt.Sprintf("urn:uuid:%d", i), strings.Repeat("é", 200), "10.0.1.1"))
	}
	if got := merge(cams, found, Options{}); len(got) != DefaultMaxCameras {
		t.Errorf("%d cameras, want %d", len(got), DefaultMaxCameras)
	}
	if got := merge(cams[:2], found, Options{MaxCameras: 10}); len(got) != 10 || got[0].Kind != Camd || got[1].Kind != Camd {
		t.Errorf("camd cameras are kept first: %+v", got)
	}

	// One endpoint answering with many addresses and service URLs.
	var xaddrs []string
	for i := range 64 {
		xaddrs = append(xaddrs, fmt.Sprintf("http://10.0.2.%d/onvif/device_service", i), "http://10.0.2.1/"+strings.Repeat("x", maxXAddr))
	}
	many := onvifDevice("urn:uuid:many", strings.Repeat("é", 200), "10.0.1.1", xaddrs...)
	got := merge(nil, []wsd.Found{many, many}, Options{})
	if len(got) != 1 {
		t.Fatalf("%d cameras for one endpoint", len(got))
	}
	c := got[0]
	if len(c.XAddrs) != maxXAddrs || len(c.Addrs) > maxAddrs || len(c.Name) > maxName || !strings.HasPrefix(strings.Repeat("é", 200), c.Name) {
		t.Errorf("%d service URLs, %d addresses, name of %d bytes %q", len(c.XAddrs), len(c.Addrs), len(c.Name), c.Name)
	}
}

func TestFindNeedsInterfaces(t *testing.T) {
	if _, err := Find(t.Context(), Options{}); err != ErrNoInterface {
		t.Fatalf("Find with no interface: %v", err)
	}
}
