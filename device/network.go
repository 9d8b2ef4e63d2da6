package device

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/camd-project/camd/device/api"
	"github.com/camd-project/camd/device/events"
	"github.com/camd-project/camd/device/pairing"
	"github.com/camd-project/camd/media/snapshot"
	"github.com/camd-project/camd/network"
	"github.com/camd-project/camd/storage/eventlog"
)

// networkDir is the access point's directory in the data directory: its
// hostapd configuration while it is open, the access point kept while
// setup mode lasts (setupAPFile), wpa_supplicant's client sockets.
const networkDir = "network"

// setupAPFile keeps setup mode's access point across a restart until the
// camera has joined a network (network.SetupOptions.Keep).
const setupAPFile = "setup-ap.json"

// networkState is Wi-Fi setup (docs/network.md): the link manager
// wrapped in setup mode, and the Wi-Fi code window.
type networkState struct {
	setup   *network.Setup      // nil with network.wifi: off
	noSetup bool                // network.setup: off
	codes   *network.CodeReader // nil without raw pictures or network.QRScan
	sup     *network.Supplicant // nil unless wpa_supplicant
}

// openNetwork builds the link manager of cfg.Network. Setup mode derives
// its access point from the pairing setup secret; the code window reads
// the grabber's raw pictures (nil for a source without them); the
// Wi-Fi's events go to the event log.
func openNetwork(cfg Config, pm *pairing.Manager, grab *snapshot.Grabber, es *eventState, log *slog.Logger) (*networkState, error) {
	nc := cfg.Network
	ns := &networkState{}
	tell := es.wifiChanged
	var link network.Link
	switch nc.WiFi {
	case "off":
		return ns, nil
	case "sim":
		sims := nc.simNetworks
		if sims == nil {
			sims = network.SimNetworks()
		}
		sim := network.NewSim(sims...)
		sim.Events = tell
		link = sim
	case "wpa_supplicant":
		opts := network.SupplicantOptions{
			Socket: nc.ControlSocket, ClientDir: filepath.Join(cfg.Data, networkDir),
			JoinTimeout: nc.JoinTimeout, LeaseTimeout: nc.JoinTimeout, Events: tell, Logger: log,
		}
		if len(nc.LeaseCommand) > 0 {
			opts.Lease = leaseCommand(nc.LeaseCommand)
		}
		if err := os.MkdirAll(opts.ClientDir, 0o700); err != nil {
			return nil, fmt.Errorf("device: %w", err)
		}
		sup, err := network.OpenSupplicant(opts)
		if err != nil {
			return nil, err
		}
		ns.sup, link = sup, sup
	}
	var ap interface {
		Start(context.Context, network.SetupAP) error
		Stop() error
	}
	switch nc.Setup {
	case "sim":
		ap = &network.SimAP{}
	case "hostapd":
		dir := filepath.Join(cfg.Data, networkDir)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			ns.close()
			return nil, fmt.Errorf("device: %w", err)
		}
		ap = network.NewHostapd(network.HostapdOptions{
			Interface: nc.Interface, Dir: dir, Hostapd: nc.HostapdCommand, DHCP: nc.DHCPCommand, Logger: log,
		})
	case "off":
		ap, ns.noSetup = noAP{}, true
	}
	if err := os.MkdirAll(filepath.Join(cfg.Data, networkDir), 0o700); err != nil {
		ns.close()
		return nil, fmt.Errorf("device: %w", err)
	}
	ns.setup = network.NewSetup(network.SetupOptions{
		Link: link, AP: ap, Events: tell, Logger: log,
		Keep: filepath.Join(cfg.Data, networkDir, setupAPFile),
		Secret: func() []byte {
			p := pm.SetupPayload(netip.AddrPort{})
			return p.Secret[:]
		},
	})
	if grab != nil && network.QRScan {
		ns.codes = network.NewCodeReader(network.CodeOptions{Pictures: grab, Join: ns.setup.Join, Logger: log})
	}
	return ns, nil
}

// noAP is setup mode without an access point (network.setup: off).
type noAP struct{}

func (noAP) Start(context.Context, network.SetupAP) error {
	return fmt.Errorf("%w: network.setup is off", network.ErrAccessPoint)
}
func (noAP) Stop() error { return nil }

// leaseCommand runs argv for a DHCP lease: exit status 0 is a lease. Its
// output goes nowhere near the log but its last line on failure.
func leaseCommand(argv []string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
		if err != nil {
			lines := bytes.Split(bytes.TrimSpace(out), []byte("\n"))
			return fmt.Errorf("%s: %v: %s", argv[0], err, lines[len(lines)-1])
		}
		return nil
	}
}

// start enters setup mode at the first boot (no network saved), unless
// the camera has no network to manage.
func (ns *networkState) start(ctx context.Context, log *slog.Logger) {
	if ns.setup == nil || ns.noSetup {
		return
	}
	if err := ns.setup.Boot(ctx); err != nil {
		log.Warn("camd: setup mode", "err", err)
	}
}

// api is the network's handlers: no link manager with network.wifi:
// off, no code window without raw pictures.
func (ns *networkState) api() *api.Network {
	a := &api.Network{}
	if ns.setup != nil {
		a.Link = ns.setup
		if !ns.noSetup {
			a.Setup = ns.setup
		}
	}
	if ns.codes != nil {
		a.Codes = ns.codes
	}
	return a
}

// forget forgets the saved network, for a factory reset.
func (ns *networkState) forget(log *slog.Logger) {
	if ns.setup == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ns.setup.Forget(ctx); err != nil {
		log.Warn("camd: factory reset: could not forget the Wi-Fi network", "err", err)
	}
}

func (ns *networkState) close() {
	if ns.codes != nil {
		ns.codes.Close()
	}
	if ns.setup != nil {
		ns.setup.Close()
	}
	if ns.sup != nil {
		ns.sup.Close()
	}
}

// wifiEventTypes are the event types of the Wi-Fi's events.
var wifiEventTypes = map[network.EventKind]string{
	network.EventJoined: events.WiFiJoined, network.EventJoinFailed: events.WiFiJoinFailed,
	network.EventDisconnected: events.WiFiDisconnected, network.EventSetupEntered: events.WiFiSetupEntered,
	network.EventSetupLeft: events.WiFiSetupLeft,
}

// wifiChanged stores a Wi-Fi event (network.Setup's, the link's).
func (es *eventState) wifiChanged(ne network.Event) {
	e := eventlog.Event{Kind: wifiEventTypes[ne.Kind], Data: map[string]string{}}
	for k, v := range map[string]string{"ssid": ne.SSID, "security": string(ne.Security), "address": ne.Address, "reason": ne.Reason, "error": ne.Error} {
		if v != "" {
			e.Data[k] = v
		}
	}
	switch ne.Kind {
	case network.EventJoined:
		e.Message = fmt.Sprintf("joined the Wi-Fi network %q", ne.SSID)
	case network.EventJoinFailed:
		e.Message = fmt.Sprintf("could not join the Wi-Fi network %q: %s", ne.SSID, ne.Error)
	case network.EventDisconnected:
		e.Message = fmt.Sprintf("lost the Wi-Fi network %q (reason %s)", ne.SSID, ne.Reason)
	case network.EventSetupEntered:
		e.Message = fmt.Sprintf("setup mode: access point %q open (%s)", ne.SSID, ne.Reason)
	case network.EventSetupLeft:
		e.Message = fmt.Sprintf("setup mode left: joined %q", ne.SSID)
		if ne.Error != "" {
			e.Message = "setup mode ended: " + ne.Error
		}
	}
	es.add(e)
}
