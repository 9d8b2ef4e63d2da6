package network

// EventKind is what changed of the Wi-Fi.
type EventKind string

// The Wi-Fi's events: device publishes them as the event types
// "wifi." + kind (docs/events.md), for owners only.
const (
	// EventJoined: a join the owner asked for (the API, the Wi-Fi code)
	// succeeded.
	EventJoined EventKind = "joined"
	// EventJoinFailed: a join failed (Reason as network.Reason); the
	// old network, or the access point, is back.
	EventJoinFailed EventKind = "join_failed"
	// EventDisconnected: the camera lost its network without being told
	// to (the access point went away or dropped it); Reason is the IEEE
	// 802.11 reason code wpa_supplicant gave.
	EventDisconnected EventKind = "disconnected"
	// EventSetupEntered: setup mode's access point opened (SSID; Reason
	// says why: no network saved, the pair button, ...).
	EventSetupEntered EventKind = "setup_entered"
	// EventSetupLeft: setup mode ended because the camera joined SSID, or
	// (Error) because its access point could not open again.
	EventSetupLeft EventKind = "setup_left"
)

// Event is a change of the Wi-Fi. It never holds a passphrase.
type Event struct {
	Kind     EventKind
	SSID     string
	Security Security
	// Address is the joined network's address.
	Address string
	Reason  string
	Error   string
}
