package network

import (
	"cmp"
	"context"
	"errors"
	"sync"
	"time"
)

// SimNetwork is a network in the simulated radio's range.
type SimNetwork struct {
	SSID       string
	Security   Security
	Passphrase string
	Signal     int // dBm
	Freq       int // MHz
	// NoLease: the network associates but its DHCP server answers
	// nothing.
	NoLease bool
	// Address is the lease's address (default 192.0.2.10).
	Address string
}

// SimNetworks are make run's simulated neighbourhood (docs/network.md).
func SimNetworks() []SimNetwork {
	return []SimNetwork{
		{SSID: "camd-sim-home", Security: PSK, Passphrase: "camd-sim-passphrase", Signal: -48, Freq: 2437},
		{SSID: "camd-sim-wpa3", Security: SAE, Passphrase: "camd-sim-wpa3", Signal: -61, Freq: 5180},
		{SSID: "camd-sim-cafe", Security: Open, Signal: -75, Freq: 2412},
		{SSID: "camd-sim-nodhcp", Security: PSK, Passphrase: "camd-sim-passphrase", Signal: -70, Freq: 2462, NoLease: true},
	}
}

// Sim is a simulated radio: a Link for hosts without Wi-Fi. Joining
// checks the passphrase against the network's and takes Delay.
type Sim struct {
	// Delay is how long associating and the DHCP lease take.
	Delay time.Duration
	// Events receives EventDisconnected when the joined network goes out
	// of range (SetNetworks); set before the Sim is used.
	Events func(Event)

	mu       sync.Mutex
	networks []SimNetwork
	joined   *SimNetwork // saved; nil for none
	up       bool        // associated with joined
	busy     bool
}

var _ Link = (*Sim)(nil)

// NewSim simulates a radio with networks in range.
func NewSim(networks ...SimNetwork) *Sim { return &Sim{networks: networks} }

// SetNetworks replaces the networks in range; the joined one drops when
// it is gone.
func (s *Sim) SetNetworks(networks ...SimNetwork) {
	s.mu.Lock()
	s.networks = networks
	var lost *Event
	if s.joined != nil && s.up && s.find(s.joined.SSID) == nil {
		s.up = false
		// 4: disassociated for inactivity, as a station that stops
		// hearing its access point reports it.
		lost = &Event{Kind: EventDisconnected, SSID: s.joined.SSID, Reason: "4"}
	}
	s.mu.Unlock()
	if lost != nil && s.Events != nil {
		s.Events(*lost)
	}
}

func (s *Sim) find(ssid string) *SimNetwork {
	for i := range s.networks {
		if s.networks[i].SSID == ssid {
			return &s.networks[i]
		}
	}
	return nil
}

// Scan lists the networks in range, strongest first.
func (s *Sim) Scan(ctx context.Context) ([]Network, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	all := make([]Network, 0, len(s.networks))
	for _, n := range s.networks {
		all = append(all, Network{SSID: n.SSID, BSSID: simBSSID(n.SSID), Signal: n.Signal, Freq: n.Freq, Channel: Channel(n.Freq), Security: n.Security})
	}
	return strongest(all), nil
}

// simBSSID is a locally administered address made from the SSID.
func simBSSID(ssid string) string {
	var h byte
	for i := range len(ssid) {
		h = h*31 + ssid[i]
	}
	return "02:00:00:00:" + hexByte(byte(len(ssid))) + ":" + hexByte(h)
}

func hexByte(b byte) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[b>>4], digits[b&15]})
}

// ErrBusy: another join is under way.
var ErrBusy = errors.New("network: a join is under way")

// Join tries c's network, and on failure stays on the old one.
func (s *Sim) Join(ctx context.Context, c Credentials) (Status, error) {
	c, err := c.Check()
	if err != nil {
		return Status{}, err
	}
	s.mu.Lock()
	if s.busy {
		s.mu.Unlock()
		return Status{}, ErrBusy
	}
	s.busy = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.busy = false
		s.mu.Unlock()
	}()
	if s.Delay > 0 {
		t := time.NewTimer(s.Delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return Status{}, ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.find(c.SSID)
	switch {
	case n == nil || !joinable(n.Security, c.Security):
		return Status{}, ErrNotFound
	case n.Security != Open && n.Passphrase != c.Passphrase:
		return Status{}, ErrWrongKey
	case n.NoLease:
		return Status{}, ErrNoLease
	}
	joined := *n
	s.joined, s.up = &joined, true
	return s.status(), nil
}

// joinable: credentials for want can join a network of security have.
func joinable(have, want Security) bool {
	return have == want || have == PSKSAE && (want == PSK || want == SAE)
}

// Status is the simulated link.
func (s *Sim) Status(context.Context) (Status, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status(), nil
}

func (s *Sim) status() Status {
	if s.joined == nil {
		return Status{State: Disconnected}
	}
	if !s.up || s.find(s.joined.SSID) == nil {
		return Status{State: Connecting, Saved: true}
	}
	n := s.joined
	return Status{
		State: Connected, SSID: n.SSID, BSSID: simBSSID(n.SSID), Security: n.Security,
		Freq: n.Freq, Channel: Channel(n.Freq), Signal: n.Signal, Address: cmp.Or(n.Address, "192.0.2.10"), Saved: true,
	}
}

// Forget drops the saved network.
func (s *Sim) Forget(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.joined, s.up = nil, false
	return nil
}
