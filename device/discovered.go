package device

import (
	"context"
	"log/slog"
	"net"
	"net/netip"

	"github.com/camd-project/camd/device/api"
	"github.com/camd-project/camd/discovery"
	"github.com/camd-project/camd/discovery/lan"
)

// addedCameras is the NVR's catalog as the LAN finder sees it: whether a
// camera is added already (a camd camera by its device ID, another by its
// WS-Discovery endpoint or one of its addresses).
type addedCameras interface {
	Added(id string, addrs []netip.Addr) bool
}

// lanFinder finds the cameras an NVR could add (GET
// /api/v1/cameras/discovered) on the interfaces discovery announces on,
// leaving out the device itself and what added reports.
type lanFinder struct {
	listenHost string
	interfaces []string // discovery.interfaces
	self       string   // this device's ID
	// added is the NVR's catalog; nil when there is none (nothing is
	// left out). Leave it nil rather than a nil pointer.
	added addedCameras
	log   *slog.Logger
}

func newLANFinder(cfg Config, self string, added addedCameras, log *slog.Logger) lanFinder {
	host, _, _ := net.SplitHostPort(cfg.Listen)
	return lanFinder{listenHost: host, interfaces: cfg.Discovery.Interfaces, self: self, added: added, log: log}
}

// FindCameras asks the LAN until ctx ends. Listening on loopback (as
// `make run` does), camd asks nothing and says why.
func (f lanFinder) FindCameras(ctx context.Context) (api.DiscoveredAnswer, error) {
	ifaces, reason, err := discovery.ChooseInterfaces(f.listenHost, f.interfaces)
	if err != nil {
		return api.DiscoveredAnswer{}, err
	}
	ans := api.DiscoveredAnswer{NotSearched: reason}
	for _, ifi := range ifaces {
		ans.Interfaces = append(ans.Interfaces, ifi.Name)
	}
	if len(ifaces) == 0 {
		return ans, nil
	}
	ans.Cameras, err = lan.Find(ctx, lan.Options{Interfaces: ifaces, Self: f.self, Added: f.added, Logger: f.log})
	return ans, err
}
