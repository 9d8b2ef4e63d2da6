package device

import (
	"net"
	"sync/atomic"

	"github.com/camd-project/camd/device/settings"
	"github.com/camd-project/camd/discovery"
)

// discoveryModel is the model announced in TXT and ONVIF scopes until
// the board profile names the product.
const discoveryModel = "generic"

// discoveryState is the daemon's part in LAN discovery.
type discoveryState struct {
	announcer atomic.Pointer[discovery.Announcer]
}

// initDiscovery follows the owner's renames: the announcer re-announces
// under the new name.
func (d *Daemon) initDiscovery() {
	d.onSettings(func(before, after settings.Settings) {
		if a := d.discovery.announcer.Load(); a != nil && before.Name != after.Name {
			a.SetName(after.Name)
		}
	})
}

// startDiscovery announces the camera on the LAN: mDNS/DNS-SD and, unless
// turned off, WS-Discovery, on the interfaces chosen from the listen
// address (none on loopback, as `make run` does; the announcer logs why).
// The pairing state is read at every announcement and re-announced when
// it changes.
func (d *Daemon) startDiscovery() {
	c := d.cfg.Discovery
	if !c.Enabled {
		d.log.Info("discovery: off (discovery.enabled is false): not announcing")
		return
	}
	host, _, _ := net.SplitHostPort(d.cfg.Listen)
	a, err := discovery.Start(discovery.Options{
		Name:       d.Settings().Name,
		Port:       d.tcp.Addr().(*net.TCPAddr).Port,
		ID:         d.id.ID,
		Model:      discoveryModel,
		Firmware:   Version,
		Status:     func() (bool, uint16) { return d.pairing.Paired(), d.pairing.Discriminator() },
		ListenHost: host,
		Interfaces: c.Interfaces,
		ONVIF:      c.ONVIF,
		Logger:     d.log,
	})
	if err != nil {
		d.log.Warn("discovery: not started", "err", err)
		return
	}
	d.discovery.announcer.Store(a)
	d.pairing.OnChange(a.Refresh)
}

// stopDiscovery says goodbye on the LAN. It is safe to call twice.
func (d *Daemon) stopDiscovery() {
	if a := d.discovery.announcer.Load(); a != nil {
		a.Close()
	}
}
