package network_test

import (
	"context"
	"errors"
	"testing"

	"github.com/camd-project/camd/network"
)

// The simulated radio joins as wpa_supplicant does: the passphrase must
// match, a failed join keeps the old network, and it says why.
func TestSimJoin(t *testing.T) {
	ctx := context.Background()
	sim := network.NewSim(network.SimNetworks()...)
	if st, _ := sim.Status(ctx); st.State != network.Disconnected || st.Saved {
		t.Fatalf("a new radio: %+v", st)
	}
	list, _ := sim.Scan(ctx)
	if len(list) != 4 || list[0].SSID != "camd-sim-home" || list[0].Channel != 6 {
		t.Fatalf("scan: %+v", list)
	}
	if st, err := sim.Join(ctx, network.Credentials{SSID: "camd-sim-home", Passphrase: "camd-sim-passphrase"}); err != nil || st.State != network.Connected {
		t.Fatalf("join: %+v %v", st, err)
	}
	for _, c := range []struct {
		creds network.Credentials
		err   error
	}{
		{network.Credentials{SSID: "camd-sim-wpa3", Security: network.SAE, Passphrase: "wrong"}, network.ErrWrongKey},
		{network.Credentials{SSID: "camd-sim-wpa3", Passphrase: "camd-sim-wpa3"}, network.ErrNotFound}, // PSK to a WPA3-only network
		{network.Credentials{SSID: "nowhere", Passphrase: "whatever!"}, network.ErrNotFound},
		{network.Credentials{SSID: "camd-sim-nodhcp", Passphrase: "camd-sim-passphrase"}, network.ErrNoLease},
		{network.Credentials{SSID: "camd-sim-cafe", Security: network.Open, Passphrase: "not open!"}, network.ErrCredentials},
	} {
		if _, err := sim.Join(ctx, c.creds); !errors.Is(err, c.err) {
			t.Errorf("join %v: %v, want %v", c.creds, err, c.err)
		}
		if st, _ := sim.Status(ctx); st.SSID != "camd-sim-home" || st.State != network.Connected {
			t.Errorf("after %v: %+v", c.creds, st)
		}
	}
	sim.SetNetworks() // the home network vanishes
	if st, _ := sim.Status(ctx); st.State != network.Connecting || !st.Saved {
		t.Errorf("home gone: %+v", st)
	}
	sim.Forget(ctx)
	if st, _ := sim.Status(ctx); st.State != network.Disconnected || st.Saved {
		t.Errorf("forgotten: %+v", st)
	}
}
