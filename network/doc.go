// Package network puts the camera on the owner's Wi-Fi (docs/network.md).
//
// A Link is the link manager's contract: scan, join, status, forget.
// Supplicant drives wpa_supplicant over its control socket (a unix
// datagram socket, the ctrl_iface protocol); Sim is a simulated radio for
// hosts without Wi-Fi, the default of make run. Both join the same way:
// try the new network, and when it fails (wrong password, not found, no
// DHCP lease, timeout) go back to the network the camera had and say why
// (ErrWrongKey, ErrNotFound, ErrNoLease, ErrTimeout).
//
// Credentials carry a passphrase that is never logged: their String,
// GoString, Format and LogValue hide it, and no status holds it.
//
// ParseWiFiCode reads the WIFI: payload of the Wi-Fi QR codes phones show
// (WIFI:T:WPA;S:home;P:secret;;); Setup derives the setup mode's access
// point (SSID and WPA2 passphrase) from the pairing setup secret, keeps
// it while setup mode lasts (a restart included), and serves it with
// Hostapd (hostapd and dnsmasq).
//
// Events (joined, join failed, disconnected, setup mode entered and
// left) go to a func(Event) given to Setup and to the links; device
// stores them as the event types wifi.*.
package network
