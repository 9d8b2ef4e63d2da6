package network_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/camd-project/camd/network"
)

// eventSink collects events, and lets a test wait for the next one.
type eventSink struct {
	mu  sync.Mutex
	got []network.Event
	ch  chan network.Event
}

func newEventSink() *eventSink { return &eventSink{ch: make(chan network.Event, 64)} }

func (s *eventSink) add(e network.Event) {
	s.mu.Lock()
	s.got = append(s.got, e)
	s.mu.Unlock()
	s.ch <- e
}

// next waits for the next event.
func (s *eventSink) next(t *testing.T) network.Event {
	t.Helper()
	select {
	case e := <-s.ch:
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("no event")
		return network.Event{}
	}
}

// kinds drains what came so far.
func (s *eventSink) kinds() []network.EventKind {
	var k []network.EventKind
	for {
		select {
		case e := <-s.ch:
			k = append(k, e.Kind)
		default:
			return k
		}
	}
}

// Setup tells of entering and leaving setup mode and of every join's
// outcome, in order, never with a passphrase.
func TestSetupEvents(t *testing.T) {
	ctx := context.Background()
	secret := []byte("0123456789abcdef")
	setupAP := network.SetupNetwork(secret)
	sim := network.NewSim(network.SimNetworks()...)
	sink := newEventSink()
	sim.Events = sink.add
	ap := &fakeAP{}
	s := network.NewSetup(network.SetupOptions{Link: sim, AP: ap, Secret: func() []byte { return secret }, Events: sink.add})
	defer s.Close()
	if err := s.Boot(ctx); err != nil {
		t.Fatal(err)
	}
	if e := sink.next(t); e != (network.Event{Kind: network.EventSetupEntered, SSID: setupAP.SSID, Security: network.PSK, Reason: "no network saved"}) {
		t.Errorf("boot: %+v", e)
	}
	if _, err := s.Join(ctx, network.Credentials{SSID: "camd-sim-home", Passphrase: "wrong passphrase"}); !errors.Is(err, network.ErrWrongKey) {
		t.Fatal(err)
	}
	// Setup mode goes on: the access point opened again.
	if e := sink.next(t); e.Kind != network.EventJoinFailed || e.SSID != "camd-sim-home" || e.Security != network.PSK || e.Reason != "wrong_key" || e.Error == "" {
		t.Errorf("wrong passphrase: %+v", e)
	}
	if _, err := s.Join(ctx, network.Credentials{SSID: "camd-sim-home", Passphrase: "camd-sim-passphrase"}); err != nil {
		t.Fatal(err)
	}
	if e := sink.next(t); e != (network.Event{Kind: network.EventJoined, SSID: "camd-sim-home", Security: network.PSK, Address: "192.0.2.10"}) {
		t.Errorf("joined: %+v", e)
	}
	if e := sink.next(t); e != (network.Event{Kind: network.EventSetupLeft, SSID: "camd-sim-home"}) {
		t.Errorf("left: %+v", e)
	}
	// Joining another network out of setup mode: only its outcome.
	if _, err := s.Join(ctx, network.Credentials{SSID: "camd-sim-gone", Passphrase: "whatever passphrase"}); !errors.Is(err, network.ErrNotFound) {
		t.Fatal(err)
	}
	if e := sink.next(t); e.Kind != network.EventJoinFailed || e.Reason != "not_found" {
		t.Errorf("not found: %+v", e)
	}
	// The home network goes out of range.
	sim.SetNetworks(network.SimNetworks()[1:]...)
	if e := sink.next(t); e != (network.Event{Kind: network.EventDisconnected, SSID: "camd-sim-home", Reason: "4"}) {
		t.Errorf("out of range: %+v", e)
	}
	// The pair button; a failed join whose access point cannot open
	// again ends setup mode, and says why.
	if err := s.Enter(ctx, "pair button held"); err != nil {
		t.Fatal(err)
	}
	if e := sink.next(t); e.Kind != network.EventSetupEntered || e.Reason != "pair button held" {
		t.Errorf("pair button: %+v", e)
	}
	ap.fail = errors.New("hostapd: no radio")
	if _, err := s.Join(ctx, network.Credentials{SSID: "camd-sim-wpa3", Security: network.SAE, Passphrase: "wrong"}); !errors.Is(err, network.ErrWrongKey) {
		t.Fatal(err)
	}
	if e := sink.next(t); e.Kind != network.EventJoinFailed || e.Security != network.SAE {
		t.Errorf("wrong password: %+v", e)
	}
	if e := sink.next(t); e.Kind != network.EventSetupLeft || e.SSID != "" || e.Error == "" {
		t.Errorf("the access point could not open again: %+v", e)
	}
	if k := sink.kinds(); len(k) > 0 {
		t.Errorf("more events: %v", k)
	}
	for _, e := range sink.got {
		if e.Error != "" && slices.Contains([]string{"wrong passphrase", "camd-sim-passphrase", "wrong"}, e.Error) {
			t.Errorf("an event holds a passphrase: %+v", e)
		}
	}
}

// The camera dropped by its access point is told once; camd's own
// disconnections (another join, a failed one, forgetting) are not.
func TestSupplicantDisconnected(t *testing.T) {
	ctx := context.Background()
	sink := newEventSink()
	f, s := fake(t, nil, network.SupplicantOptions{Events: sink.add})
	home := network.Credentials{SSID: "home", Passphrase: "home passphrase"}
	if _, err := s.Join(ctx, home); err != nil {
		t.Fatal(err)
	}
	f.Deauth(7)
	if e := sink.next(t); e != (network.Event{Kind: network.EventDisconnected, SSID: "home", Reason: "7"}) {
		t.Errorf("deauthenticated: %+v", e)
	}
	f.Deauth(7) // already disconnected: nothing
	// camd's own: a join elsewhere, one that fails (and goes back), and
	// forgetting.
	if _, err := s.Join(ctx, home); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Join(ctx, network.Credentials{SSID: "cafe"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Join(ctx, network.Credentials{SSID: "home", Passphrase: "wrong passphrase"}); !errors.Is(err, network.ErrWrongKey) {
		t.Fatal(err)
	}
	if err := s.Forget(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Join(ctx, home); err != nil {
		t.Fatal(err)
	}
	// The next event is this one: none came of the above.
	f.Deauth(3)
	if e := sink.next(t); e != (network.Event{Kind: network.EventDisconnected, SSID: "home", Reason: "3"}) {
		t.Errorf("after camd's own disconnections: %+v, want the access point's (reason 3)", e)
	}
}
