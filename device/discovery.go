package device

import (
	"log/slog"
	"net"
	"sync/atomic"

	"github.com/camd-project/camd/device/pairing"
	"github.com/camd-project/camd/device/settings"
	"github.com/camd-project/camd/discovery"
)

// discoveryModel is the model announced in TXT and ONVIF scopes until
// the board profile names the product.
const discoveryModel = "generic"

// announcer is the daemon's part in LAN discovery: it announces the
// camera while Run serves, re-announces when the owner renames it or the
// pairing state changes, and says goodbye when Run stops.
type announcer struct {
	enabled bool
	opts    discovery.Options // all but the name, given to start
	log     *slog.Logger
	running atomic.Pointer[discovery.Announcer]
}

// newAnnouncer prepares the announcements of the camera that serves
// HTTPS on port (and ONVIF on onvifPort, 0: none): mDNS/DNS-SD and, unless turned off, WS-Discovery, on the
// interfaces chosen from the listen address (none on loopback, as `make
// run` does; the announcer logs why). The pairing state is read at every
// announcement.
func newAnnouncer(cfg Config, port, onvifPort int, deviceID string, p *pairing.Manager, log *slog.Logger) *announcer {
	host, _, _ := net.SplitHostPort(cfg.Listen)
	return &announcer{
		enabled: cfg.Discovery.Enabled,
		log:     log,
		opts: discovery.Options{
			Port:       port,
			ID:         deviceID,
			Model:      discoveryModel,
			Firmware:   Version,
			Status:     func() (bool, uint16) { return p.Paired(), p.Discriminator() },
			ListenHost: host,
			Interfaces: cfg.Discovery.Interfaces,
			ONVIF:      cfg.Discovery.ONVIF,
			ONVIFPort:  onvifPort,
			Logger:     log,
		},
	}
}

// start announces the camera on the LAN under name.
func (n *announcer) start(name string) {
	if !n.enabled {
		n.log.Info("discovery: off (discovery.enabled is false): not announcing")
		return
	}
	opts := n.opts
	opts.Name = name
	a, err := discovery.Start(opts)
	if err != nil {
		n.log.Warn("discovery: not started", "err", err)
		return
	}
	n.running.Store(a)
}

// settingsChanged follows the owner's renames: the announcer re-announces
// under the new name.
func (n *announcer) settingsChanged(before, after settings.Settings) {
	if a := n.running.Load(); a != nil && before.Name != after.Name {
		a.SetName(after.Name)
	}
}

// refresh re-announces after the pairing state changed.
func (n *announcer) refresh() {
	if a := n.running.Load(); a != nil {
		a.Refresh()
	}
}

// stop says goodbye on the LAN. It is safe to call twice.
func (n *announcer) stop() {
	if a := n.running.Load(); a != nil {
		a.Close()
	}
}

// answers counts what discovery sent since Run started it (mDNS
// responses and announcements, WS-Discovery matches), for the metrics.
func (n *announcer) answers() uint64 {
	if a := n.running.Load(); a != nil {
		return a.Answers()
	}
	return 0
}
