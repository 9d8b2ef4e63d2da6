package network

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"unicode/utf8"
)

// Link is a link manager: what camd needs of the Wi-Fi. Supplicant and
// Sim implement it.
type Link interface {
	// Scan lists the networks in range, strongest first, one per SSID.
	Scan(ctx context.Context) ([]Network, error)
	// Join tries c's network; when it fails, the network the camera had
	// is restored and the error says why (ErrWrongKey, ErrNotFound,
	// ErrNoLease, ErrTimeout).
	Join(ctx context.Context, c Credentials) (Status, error)
	// Status is the link as it is now.
	Status(ctx context.Context) (Status, error)
	// Forget disconnects and removes the saved network.
	Forget(ctx context.Context) error
}

// Why a join failed: the old network is kept.
var (
	ErrWrongKey = errors.New("network: wrong password")
	ErrNotFound = errors.New("network: network not found")
	ErrNoLease  = errors.New("network: no DHCP lease")
	ErrTimeout  = errors.New("network: timed out joining")
	// ErrRejected: the access point refused the association for another
	// reason than the password.
	ErrRejected = errors.New("network: the access point refused the connection")
	// ErrCredentials: the SSID, security or passphrase cannot be used.
	ErrCredentials = errors.New("network: bad credentials")
	// ErrSupplicant: wpa_supplicant failed a command, answered what the
	// protocol does not allow, or did not answer.
	ErrSupplicant = errors.New("network: wpa_supplicant")
	// ErrClosed: the link was closed.
	ErrClosed = errors.New("network: closed")
)

// Reason names why a join failed, for the API: wrong_key, not_found,
// no_lease, timeout, rejected, credentials; "" for other errors.
func Reason(err error) string {
	for _, r := range []struct {
		err  error
		name string
	}{
		{ErrWrongKey, "wrong_key"}, {ErrNotFound, "not_found"}, {ErrNoLease, "no_lease"},
		{ErrTimeout, "timeout"}, {ErrRejected, "rejected"}, {ErrCredentials, "credentials"},
	} {
		if errors.Is(err, r.err) {
			return r.name
		}
	}
	return ""
}

// Security is how a network authenticates.
type Security string

// Securities camd joins (Open, PSK, SAE, PSKSAE) and those it only lists.
const (
	Open Security = "open"
	// PSK is WPA2-Personal (WPA-PSK).
	PSK Security = "psk"
	// SAE is WPA3-Personal.
	SAE Security = "sae"
	// PSKSAE is WPA2/WPA3 transition mode: joined with SAE where the
	// radio can, PSK otherwise.
	PSKSAE Security = "psk+sae"
	// WEP and EAP (Enterprise) are listed but not joined.
	WEP Security = "wep"
	EAP Security = "eap"
)

// Network is one network in range.
type Network struct {
	SSID     string   `json:"ssid"`
	BSSID    string   `json:"bssid"`
	Signal   int      `json:"signal_dbm"`
	Freq     int      `json:"frequency_mhz"`
	Channel  int      `json:"channel"`
	Security Security `json:"security"`
}

// State is where the link is.
type State string

// States of the link.
const (
	Disconnected State = "disconnected"
	Connecting   State = "connecting"
	Connected    State = "connected"
	// AccessPoint: the radio serves the setup mode's access point.
	AccessPoint State = "access_point"
)

// Status is the link now. It never holds a passphrase.
type Status struct {
	State    State    `json:"state"`
	SSID     string   `json:"ssid,omitempty"`
	BSSID    string   `json:"bssid,omitempty"`
	Security Security `json:"security,omitempty"`
	Freq     int      `json:"frequency_mhz,omitempty"`
	Channel  int      `json:"channel,omitempty"`
	Signal   int      `json:"signal_dbm,omitempty"`
	// Address is the IPv4 address the interface holds.
	Address string `json:"address,omitempty"`
	// Saved: a network is saved, which the camera joins at boot.
	Saved bool `json:"saved"`
}

// Credentials are what joining a network takes. The passphrase never
// shows in logs or formatted output.
type Credentials struct {
	SSID string
	// Security is Open, PSK, SAE or PSKSAE; "" means PSK with a
	// passphrase, Open without.
	Security   Security
	Passphrase string
	// Hidden networks are probed for by name.
	Hidden bool
}

// Check says whether c can be joined, with its default security filled
// in: an SSID of 1 to 32 bytes; a WPA2 passphrase of 8 to 63 printable
// ASCII characters; a WPA3 password of 1 to 128 bytes of UTF-8 without
// control characters; none for an open network.
func (c Credentials) Check() (Credentials, error) {
	if c.Security == "" {
		c.Security = PSK
		if c.Passphrase == "" {
			c.Security = Open
		}
	}
	if n := len(c.SSID); n < 1 || n > 32 {
		return c, fmt.Errorf("%w: the SSID must be 1 to 32 bytes", ErrCredentials)
	}
	p := c.Passphrase
	switch c.Security {
	case Open:
		if p != "" {
			return c, fmt.Errorf("%w: an open network takes no passphrase", ErrCredentials)
		}
	case PSK, PSKSAE:
		if len(p) < 8 || len(p) > 63 {
			return c, fmt.Errorf("%w: a WPA2 passphrase is 8 to 63 characters", ErrCredentials)
		}
		for i := range len(p) {
			if p[i] < 0x20 || p[i] > 0x7e {
				return c, fmt.Errorf("%w: a WPA2 passphrase is printable ASCII", ErrCredentials)
			}
		}
	case SAE:
		if len(p) < 1 || len(p) > 128 || !utf8.ValidString(p) {
			return c, fmt.Errorf("%w: a WPA3 password is 1 to 128 bytes of UTF-8", ErrCredentials)
		}
		for _, r := range p {
			if r < 0x20 || r == 0x7f {
				return c, fmt.Errorf("%w: a WPA3 password has no control characters", ErrCredentials)
			}
		}
	default:
		return c, fmt.Errorf("%w: security %q (open, psk, sae or psk+sae)", ErrCredentials, c.Security)
	}
	return c, nil
}

// String hides the passphrase.
func (c Credentials) String() string {
	return fmt.Sprintf("{SSID:%q Security:%s Passphrase:[hidden]}", c.SSID, c.Security)
}

// GoString hides the passphrase from %#v.
func (c Credentials) GoString() string { return "network.Credentials" + c.String() }

// Format hides the passphrase from every verb (%v, %+v, %#v, %s, %q).
func (c Credentials) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		fmt.Fprint(f, c.GoString())
		return
	}
	fmt.Fprint(f, c.String())
}

// LogValue hides the passphrase from slog.
func (c Credentials) LogValue() slog.Value {
	return slog.GroupValue(slog.String("ssid", c.SSID), slog.String("security", string(c.Security)))
}

// Channel is the Wi-Fi channel of a frequency in MHz (0 when unknown).
func Channel(freq int) int {
	switch {
	case freq == 2484:
		return 14
	case freq >= 2412 && freq <= 2472:
		return (freq - 2407) / 5
	case freq >= 5160 && freq <= 5885:
		return (freq - 5000) / 5
	case freq >= 5955 && freq <= 7115:
		return (freq - 5950) / 5
	}
	return 0
}
