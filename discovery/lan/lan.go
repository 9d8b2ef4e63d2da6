package lan

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/camd-project/camd/discovery"
	"github.com/camd-project/camd/discovery/wsd"
)

// Kind is how a camera was recognised.
type Kind string

// Kinds of cameras.
const (
	// Camd is a camd camera: it answered for _camd._tcp over mDNS. An NVR
	// adds it with an invitation its owner made.
	Camd Kind = "camd"
	// ONVIF is any other device that answered a WS-Discovery probe for a
	// NetworkVideoTransmitter. An NVR adds it by RTSP URL or by ONVIF
	// address and credentials.
	ONVIF Kind = "onvif"
)

// How a camera answered (Camera.Via).
const (
	ViaMDNS = "mdns"
	ViaWSD  = "ws-discovery"
)

// Camera is a camera found on the LAN.
type Camera struct {
	Kind Kind `json:"kind"`
	// Name is the friendly name: the DNS-SD instance name of a camd
	// camera, the ONVIF name scope of another (may be empty).
	Name string `json:"name"`
	// Model is the TXT record's model, or the ONVIF hardware scope.
	Model string `json:"model,omitempty"`
	// ID is a camd camera's device ID (the one in its pairing QR code).
	ID string `json:"id,omitempty"`
	// Endpoint is the WS-Discovery endpoint (urn:uuid:…) of a camera that
	// answered the probe.
	Endpoint string `json:"endpoint,omitempty"`
	// Addrs are the camera's addresses: a camd camera's A and AAAA
	// records, another's ONVIF service hosts and the address its answer
	// came from.
	Addrs []netip.Addr `json:"addrs"`
	// Port is a camd camera's HTTPS port.
	Port int `json:"port,omitempty"`
	// XAddrs are the ONVIF device service URLs the camera gave.
	XAddrs []string `json:"xaddrs,omitempty"`
	// Firmware is a camd camera's version.
	Firmware string `json:"firmware,omitempty"`
	// Paired says whether the camera has an owner already (a camd
	// camera's TXT paired=1); nil when the camera does not say (other
	// makes).
	Paired *bool `json:"paired"`
	// Via lists how the camera answered: ViaMDNS, ViaWSD or both.
	Via []string `json:"via"`
}

// added tells which cameras the caller (the NVR's catalog) already has:
// a camd camera by its device ID, another by its WS-Discovery endpoint or
// by one of its addresses (the host of the URL it was added with).
type added interface {
	Added(id string, addrs []netip.Addr) bool
}

// Options configure Find.
type Options struct {
	// Interfaces to browse and probe on; required.
	Interfaces []net.Interface
	// Added, if not nil, leaves out the cameras it reports. A nil
	// pointer in a non-nil interface is called: leave the field nil.
	Added added
	// Self is the finding camd's own device ID: its own announcement is
	// not listed.
	Self string
	// MaxCameras bounds the list (default 256).
	MaxCameras int
	Logger     *slog.Logger
}

// DefaultMaxCameras is Options.MaxCameras's default.
const DefaultMaxCameras = 256

// Bounds of what a camera keeps of what it said.
const (
	maxAddrs  = 8
	maxXAddrs = 4
	maxXAddr  = 256 // bytes of one ONVIF service URL
	maxName   = 128 // bytes, cut at a character boundary
	maxModel  = 64
)

// ErrNoInterface is returned when Options.Interfaces is empty.
var ErrNoInterface = errors.New("lan: no interface to find cameras on")

// Find browses for camd cameras and probes for ONVIF devices on
// o.Interfaces until ctx ends, and returns the cameras that answered,
// merged: camd cameras first, each kind by name. It opens its sockets on
// the calling goroutine (a test's network namespace is the thread's). A
// failure of one of the two is logged and the other's cameras returned;
// it is an error only when both fail.
func Find(ctx context.Context, o Options) ([]Camera, error) {
	if len(o.Interfaces) == 0 {
		return nil, ErrNoInterface
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxCameras <= 0 {
		o.MaxCameras = DefaultMaxCameras
	}
	type probed struct {
		found []wsd.Found
		err   error
	}
	probe := make(chan probed, 1)
	p, probeErr := wsd.OpenProbe(wsd.ProbeOptions{Interfaces: o.Interfaces, MaxDevices: o.MaxCameras})
	if probeErr != nil {
		probe <- probed{err: probeErr}
	} else {
		go func() {
			found, err := p.Gather(ctx)
			probe <- probed{found, err}
		}()
	}
	names := make([]string, len(o.Interfaces))
	for i, ifi := range o.Interfaces {
		names[i] = ifi.Name
	}
	cams, browseErr := discovery.Browse(ctx, discovery.BrowseOptions{Interfaces: names, Logger: o.Logger})
	pr := <-probe // the probe gathers until ctx ends
	switch {
	case browseErr != nil && pr.err != nil:
		return nil, fmt.Errorf("lan: %w", errors.Join(browseErr, pr.err))
	case browseErr != nil:
		o.Logger.Warn("lan: mDNS browse failed; listing WS-Discovery answers only", "err", browseErr)
	case pr.err != nil:
		o.Logger.Warn("lan: WS-Discovery probe failed; listing mDNS answers only", "err", pr.err)
	}
	return merge(cams, pr.found, o), nil
}

// merge lists the camd cameras and the WS-Discovery answers as one list:
// a WS-Discovery answer with a camd camera's endpoint joins that camera.
func merge(cams []discovery.Camera, found []wsd.Found, o Options) []Camera {
	if o.MaxCameras <= 0 {
		o.MaxCameras = DefaultMaxCameras
	}
	var out []Camera
	byEndpoint := map[string]int{}
	self := ""
	if o.Self != "" {
		self = wsd.EndpointFor(o.Self)
	}
	for _, c := range cams {
		if c.ID == o.Self && o.Self != "" {
			continue
		}
		ep := wsd.EndpointFor(c.ID)
		if _, dup := byEndpoint[ep]; dup || len(out) >= o.MaxCameras {
			continue
		}
		paired := c.Paired
		byEndpoint[ep] = len(out)
		out = append(out, Camera{
			Kind: Camd, Name: clip(c.Name, maxName), Model: clip(c.Model, maxModel), ID: c.ID,
			Addrs: addrs(nil, c.Addrs...), Port: c.Port, Firmware: clip(c.Firmware, maxModel),
			Paired: &paired, Via: []string{ViaMDNS},
		})
	}
	for _, f := range found {
		if f.Endpoint == self && self != "" {
			continue
		}
		i, known := byEndpoint[f.Endpoint]
		if !known {
			if len(out) >= o.MaxCameras {
				continue
			}
			i = len(out)
			byEndpoint[f.Endpoint] = i
			out = append(out, Camera{
				Kind: ONVIF, Name: clip(f.Scope(wsd.ScopeName), maxName), Model: clip(f.Scope(wsd.ScopeHardware), maxModel),
				Addrs: addrs(nil, f.From), Via: []string{},
			})
		}
		c := &out[i]
		c.Endpoint = f.Endpoint
		if !slices.Contains(c.Via, ViaWSD) {
			c.Via = append(c.Via, ViaWSD)
		}
		for _, x := range f.XAddrs {
			u, err := url.Parse(x)
			if len(x) > maxXAddr || err != nil || u.Host == "" || len(c.XAddrs) >= maxXAddrs || slices.Contains(c.XAddrs, x) {
				continue
			}
			c.XAddrs = append(c.XAddrs, x)
			if c.Kind == ONVIF {
				if a, err := netip.ParseAddr(strings.Trim(u.Hostname(), "[]")); err == nil {
					c.Addrs = addrs(c.Addrs, a)
				}
			}
		}
	}
	for i := range out {
		if out[i].Kind == ONVIF {
			slices.SortStableFunc(out[i].Addrs, addrOrder)
		}
	}
	if o.Added != nil {
		out = slices.DeleteFunc(out, func(c Camera) bool {
			id := c.ID
			if c.Kind == ONVIF {
				id = c.Endpoint
			}
			return o.Added.Added(id, c.Addrs)
		})
	}
	slices.SortStableFunc(out, func(a, b Camera) int {
		return cmp.Or(strings.Compare(string(a.Kind), string(b.Kind)), strings.Compare(a.Name, b.Name),
			strings.Compare(a.ID, b.ID), strings.Compare(a.Endpoint, b.Endpoint))
	})
	return out
}

// addrs adds the valid addresses of add to list, once each, at most
// maxAddrs in all.
func addrs(list []netip.Addr, add ...netip.Addr) []netip.Addr {
	if list == nil {
		list = []netip.Addr{}
	}
	for _, a := range add {
		a = a.Unmap()
		if a.IsValid() && len(list) < maxAddrs && !slices.Contains(list, a) {
			list = append(list, a)
		}
	}
	return list
}

// addrOrder puts IPv4 addresses first, then global IPv6 ones, then
// link-local ones, as a camd camera's are.
func addrOrder(a, b netip.Addr) int {
	rank := func(a netip.Addr) int {
		switch {
		case a.Is4():
			return 0
		case a.IsLinkLocalUnicast():
			return 2
		}
		return 1
	}
	return rank(a) - rank(b)
}

// clip cuts s to at most n bytes at a character boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
