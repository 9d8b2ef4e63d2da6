package network_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/camd-project/camd/network"
)

// The setup access point is derived from the secret alone: the same
// secret gives the same network (the phone computes it), another secret
// another; the passphrase is a valid WPA2 passphrase.
func TestSetupNetwork(t *testing.T) {
	secret := []byte("0123456789abcdef")
	ap := network.SetupNetwork(secret)
	if ap != network.SetupNetwork(secret) {
		t.Fatal("not deterministic")
	}
	// A vector for other implementations (the phone app).
	if ap.SSID != "camd-setup-4449" || ap.Passphrase != "hlbmtntmbxmdvllro6nm" {
		t.Errorf("vector: %q %q", ap.SSID, ap.Passphrase)
	}
	other := network.SetupNetwork([]byte("0123456789abcdeg"))
	if other.SSID == ap.SSID && other.Passphrase == ap.Passphrase || other.Passphrase == ap.Passphrase {
		t.Errorf("another secret, the same network: %v", other)
	}
	if _, err := (network.Credentials{SSID: ap.SSID, Passphrase: ap.Passphrase}).Check(); err != nil {
		t.Error(err)
	}
	if s := fmt.Sprint(ap) + fmt.Sprintf("%+v", ap); strings.Contains(s, ap.Passphrase) {
		t.Errorf("formatted with its passphrase: %s", s)
	}
}

// fakeAP notes what it serves.
type fakeAP struct {
	serving *network.SetupAP
	starts  int
	fail    error
}

func (f *fakeAP) Start(_ context.Context, ap network.SetupAP) error {
	if f.fail != nil {
		return f.fail
	}
	f.starts++
	f.serving = &ap
	return nil
}

func (f *fakeAP) Stop() error { f.serving = nil; return nil }

// Setup mode opens at the first boot, closes when the camera joins, and
// opens again when a join fails; a camera with a saved network boots
// without it.
func TestSetupMode(t *testing.T) {
	ctx := context.Background()
	secret := []byte("0123456789abcdef")
	sim := network.NewSim(network.SimNetworks()...)
	ap := &fakeAP{}
	s := network.NewSetup(network.SetupOptions{Link: sim, AP: ap, Secret: func() []byte { return secret }, Logger: slog.New(slog.DiscardHandler)})
	if err := s.Boot(ctx); err != nil {
		t.Fatal(err)
	}
	if !s.Active() || ap.serving == nil || *ap.serving != network.SetupNetwork(secret) {
		t.Fatalf("first boot: active %v serving %v", s.Active(), ap.serving)
	}
	if st, _ := s.Status(ctx); st.State != network.AccessPoint || st.SSID != ap.serving.SSID {
		t.Fatalf("status in setup mode: %+v", st)
	}
	// The phone on the access point gets the list scanned before it
	// opened (the radio cannot scan as a station while it serves).
	sim.SetNetworks(network.SimNetworks()[:1]...)
	if list, err := s.Scan(ctx); err != nil || len(list) != 4 {
		t.Fatalf("scan in setup mode: %v %v", list, err)
	}
	sim.SetNetworks(network.SimNetworks()...)
	if _, err := s.Join(ctx, network.Credentials{SSID: "camd-sim-home", Passphrase: "wrong passphrase"}); !errors.Is(err, network.ErrWrongKey) {
		t.Fatal(err)
	}
	if !s.Active() || ap.serving == nil || ap.starts != 2 {
		t.Fatalf("a failed join does not reopen the access point: %v %d", s.Active(), ap.starts)
	}
	// The phone, back on the access point, reads why.
	if lj := s.LastJoin(); lj == nil || lj.SSID != "camd-sim-home" || lj.Reason != "wrong_key" || lj.Error == "" {
		t.Fatalf("last join: %+v", lj)
	}
	if st, err := s.Join(ctx, network.Credentials{SSID: "camd-sim-home", Passphrase: "camd-sim-passphrase"}); err != nil || st.State != network.Connected {
		t.Fatalf("join: %+v %v", st, err)
	}
	if s.Active() || ap.serving != nil {
		t.Fatal("the access point stays open once joined")
	}
	if lj := s.LastJoin(); lj.Reason != "" || lj.Error != "" {
		t.Fatalf("last join after joining: %+v", lj)
	}
	// The next boot has a network saved.
	again := network.NewSetup(network.SetupOptions{Link: sim, AP: ap, Secret: func() []byte { return secret }})
	if err := again.Boot(ctx); err != nil || again.Active() {
		t.Fatalf("boot with a network: %v %v", err, again.Active())
	}
	// The pair button asks for it.
	if err := again.Enter(ctx, "pair button held"); err != nil || !again.Active() {
		t.Fatal(err)
	}
	again.Close()
	again.Close()
	if ap.serving != nil {
		t.Fatal("Close leaves the access point open")
	}
	if err := network.NewSetup(network.SetupOptions{Link: network.NewSim(), AP: ap, Secret: func() []byte { return nil }}).Boot(ctx); !errors.Is(err, network.ErrNoSetupSecret) {
		t.Fatal(err)
	}
}

// While a join runs (up to a minute on a real radio), the status, the
// scan list and the last join still answer: the phone polls them.
func TestSetupAnswersDuringAJoin(t *testing.T) {
	sim := network.NewSim(network.SimNetworks()...)
	sim.Delay = time.Hour
	ap := &fakeAP{}
	s := network.NewSetup(network.SetupOptions{Link: sim, AP: ap, Secret: func() []byte { return []byte("0123456789abcdef") }})
	defer s.Close()
	if err := s.Enter(context.Background(), "test"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	joined := make(chan error, 1)
	go func() {
		_, err := s.Join(ctx, network.Credentials{SSID: "camd-sim-home", Passphrase: "camd-sim-passphrase"})
		joined <- err
	}()
	for s.Active() {
		time.Sleep(time.Millisecond) // until the join closed the access point
	}
	answered := make(chan struct{})
	go func() {
		s.Status(context.Background())
		s.Scan(context.Background())
		s.LastJoin()
		close(answered)
	}()
	select {
	case <-answered:
	case <-time.After(10 * time.Second):
		t.Fatal("the status waits for the join")
	}
	cancel()
	if err := <-joined; !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if !s.Active() {
		t.Fatal("the access point did not open again")
	}
}

// Pairing replaces the secret in the setup code; setup mode keeps the
// access point it opened with until the camera has joined a network, a
// restart included, so that the phone that paired on it comes back to
// it. Then the next setup mode derives its access point from the secret
// now: the setup code that was scanned opens it no more.
func TestSetupSecretAfterPairing(t *testing.T) {
	ctx := context.Background()
	sticker, paired := []byte("0123456789abcdef"), []byte("fedcba9876543210")
	secret := sticker
	keep := filepath.Join(t.TempDir(), "setup-ap.json")
	sim := network.NewSim(network.SimNetworks()...)
	ap := &fakeAP{}
	open := func() *network.Setup {
		return network.NewSetup(network.SetupOptions{Link: sim, AP: ap, Secret: func() []byte { return secret }, Keep: keep})
	}
	s := open()
	if err := s.Boot(ctx); err != nil {
		t.Fatal(err)
	}
	first := network.SetupNetwork(sticker)
	if ap.serving == nil || *ap.serving != first {
		t.Fatalf("first boot: %v, want the sticker's", ap.serving)
	}
	info, err := os.Stat(keep)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("kept: %v %v", info, err)
	}
	if b, _ := os.ReadFile(keep); bytes.Contains(b, sticker) || strings.Contains(string(b), hex.EncodeToString(sticker)) {
		t.Errorf("the kept file holds the secret: %s", b)
	}
	// The phone pairs on the access point: the secret is replaced. A
	// failed join opens the same access point again.
	secret = paired
	if _, err := s.Join(ctx, network.Credentials{SSID: "camd-sim-home", Passphrase: "wrong passphrase"}); !errors.Is(err, network.ErrWrongKey) {
		t.Fatal(err)
	}
	if ap.serving == nil || *ap.serving != first {
		t.Fatalf("after pairing and a failed join: %v, want the same access point", ap.serving)
	}
	if got, err := s.AccessPoint(); err != nil || got != first {
		t.Errorf("access point: %v %v", got, err)
	}
	// A restart before the camera joined: the same access point, not the
	// one of the new secret, which the phone does not know.
	s.Close()
	s = open()
	defer s.Close()
	if err := s.Boot(ctx); err != nil {
		t.Fatal(err)
	}
	if ap.serving == nil || *ap.serving != first {
		t.Fatalf("after a restart: %v, want the access point the phone paired on", ap.serving)
	}
	if _, err := s.Join(ctx, network.Credentials{SSID: "camd-sim-home", Passphrase: "camd-sim-passphrase"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(keep); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("setup is over, the access point is still kept: %v", err)
	}
	// Setup mode again (the pair button): the new secret's access point,
	// which the owner reads from the API; the sticker's opens it no more.
	next := network.SetupNetwork(paired)
	if got, err := s.AccessPoint(); err != nil || got != next {
		t.Errorf("the next access point: %v %v, want the new secret's", got, err)
	}
	if err := s.Enter(ctx, "pair button held"); err != nil {
		t.Fatal(err)
	}
	if ap.serving == nil || *ap.serving != next || next.Passphrase == first.Passphrase {
		t.Fatalf("setup mode after setup: %v, want %v", ap.serving, next)
	}
	// A boot with a network saved drops an access point kept from a
	// setup mode it no longer needs.
	s.Close()
	if _, err := os.Stat(keep); err != nil {
		t.Fatalf("setup mode under way is not kept: %v", err)
	}
	if err := open().Boot(ctx); err != nil || ap.serving != nil {
		t.Fatalf("boot with a network saved: %v %v", err, ap.serving)
	}
	if _, err := os.Stat(keep); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a boot with a network saved keeps the old access point: %v", err)
	}
}
