package device

import (
	"net/netip"
)

// Paired reports whether any user is paired.
func (d *Daemon) Paired() bool { return d.pairing.Paired() }

// SetupPayload is the setup pairing code, for the device's own terminal
// or screen only: it carries the secret.
func (d *Daemon) SetupPayload() string { return d.pairing.SetupPayload(d.hostHintFor()).String() }

// hostHintFor is the address to put in a payload shown on the device: its
// listen address unless that is unspecified.
func (d *Daemon) hostHintFor() netip.AddrPort {
	ap, err := netip.ParseAddrPort(d.tcp.Addr().String())
	if err != nil || ap.Addr().IsUnspecified() {
		return netip.AddrPort{}
	}
	return ap
}
