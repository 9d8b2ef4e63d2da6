package device

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/camd-project/camd/board"
	"github.com/camd-project/camd/board/sim"
	"github.com/camd-project/camd/device/api"
	"github.com/camd-project/camd/device/events"
	"github.com/camd-project/camd/internal/testenv"
	"github.com/camd-project/camd/network"
	"github.com/camd-project/camd/network/wpatest"
	"github.com/camd-project/camd/storage/eventlog"
)

// runningLogged is running with camd's whole log, at debug level, in log.
func runningLogged(t *testing.T, log *testenv.Buffer, tweak func(*Config)) *Daemon {
	t.Helper()
	cfg := Defaults()
	cfg.Data = t.TempDir()
	cfg.Listen = "127.0.0.1:0"
	cfg.LogLevel = "debug"
	cfg.Source = "passthrough"
	cfg.Passthrough.FIFO = filepath.Join(cfg.Data, "no-writer.fifo")
	tweak(&cfg)
	d, err := New(cfg, slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return d
}

// The owner joins Wi-Fi over HTTPS, with the simulated radio and with
// wpa_supplicant (the fake, over its control socket): a wrong password
// keeps the old network and says so; the passphrase shows nowhere in
// camd's whole log, nor in any answer; a viewer cannot join.
func TestWiFiJoinOverHTTPSNeverLogsThePassphrase(t *testing.T) {
	const pass, wrong = "s3cret-home-passphrase", "wrong-home-passphrase"
	for _, kind := range []string{"sim", "wpa_supplicant"} {
		t.Run(kind, func(t *testing.T) {
			var log testenv.Buffer
			ssid := "camd-sim-home"
			d := runningLogged(t, &log, func(c *Config) {
				c.Network.WiFi = kind
				if kind == "wpa_supplicant" {
					dir := t.TempDir()
					fake, err := wpatest.Start(dir, wpatest.AP{SSID: ssid, BSSID: "02:00:00:00:01:00", Freq: 2437, Signal: -50, Security: network.PSK, Passphrase: pass, Address: "192.168.1.20"})
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(fake.Close)
					c.Network.ControlSocket = fake.Path
				}
			})
			owner := owner(t, d)
			var answers strings.Builder
			if kind == "sim" {
				// the simulated network's passphrase is public; use it
				// but look for this test's own too
				code, b := call(t, d, "POST", "/api/v1/network/wifi", owner, api.JoinRequest{SSID: ssid, Passphrase: "camd-sim-passphrase"})
				answers.Write(b)
				if code != 200 {
					t.Fatalf("join: %d %s", code, b)
				}
			}
			code, b := call(t, d, "POST", "/api/v1/network/wifi", viewer(t, d, owner), api.JoinRequest{SSID: ssid, Passphrase: pass})
			if code != 403 {
				t.Fatalf("a viewer joins: %d %s", code, b)
			}
			code, b = call(t, d, "POST", "/api/v1/network/wifi", owner, api.JoinRequest{SSID: ssid, Passphrase: wrong})
			answers.Write(b)
			var failed api.JoinFailed
			if json.Unmarshal(b, &failed); code != 422 || failed.Reason != "wrong_key" {
				t.Fatalf("wrong password: %d %s", code, b)
			}
			if kind == "wpa_supplicant" {
				code, b = call(t, d, "POST", "/api/v1/network/wifi", owner, api.JoinRequest{SSID: ssid, Passphrase: pass})
				answers.Write(b)
				if code != 200 {
					t.Fatalf("join: %d %s", code, b)
				}
			}
			for _, path := range []string{"/api/v1/network/wifi", "/api/v1/network/wifi/scan"} {
				code, b := call(t, d, "GET", path, owner, nil)
				answers.Write(b)
				if code != 200 {
					t.Fatalf("%s: %d %s", path, code, b)
				}
			}
			var st api.WiFiStatus
			_, b = call(t, d, "GET", "/api/v1/network/wifi", owner, nil)
			if json.Unmarshal(b, &st); st.State != network.Connected || st.SSID != ssid {
				t.Fatalf("status: %s", b)
			}
			if st.Code != nil {
				t.Errorf("a passthrough source without raw pictures offers the code window: %s", b)
			}
			logged := log.String()
			if !strings.Contains(logged, "network: joining") {
				t.Fatalf("the test reads the wrong log:\n%s", logged)
			}
			for _, secret := range []string{pass, wrong, "camd-sim-passphrase"} {
				if strings.Contains(logged, secret) {
					t.Errorf("camd logged a passphrase:\n%s", logged)
				}
				if strings.Contains(answers.String(), secret) {
					t.Errorf("an answer carries a passphrase:\n%s", answers.String())
				}
			}
		})
	}
}

// At the first boot, without a network, camd opens the setup access
// point (simulated here), derived from the setup secret; joining closes
// it.
func TestSetupModeAtFirstBoot(t *testing.T) {
	var log testenv.Buffer
	d := runningLogged(t, &log, func(*Config) {})
	owner := owner(t, d)
	_, b := call(t, d, "GET", "/api/v1/network/wifi", owner, nil)
	var st api.WiFiStatus
	if json.Unmarshal(b, &st); st.State != network.AccessPoint || !strings.HasPrefix(st.SSID, "camd-setup-") {
		t.Fatalf("first boot: %s", b)
	}
	setupSSID := st.SSID
	// The owner paired on the access point (owner: with the setup
	// code, whose secret pairing replaced): setup mode keeps it.
	var setupAP api.SetupAccessPoint
	if code, b := call(t, d, "GET", "/api/v1/network/wifi/setup", owner, nil); json.Unmarshal(b, &setupAP) != nil || code != 200 || setupAP.SSID != setupSSID || !setupAP.Open {
		t.Fatalf("the open access point: %d %s", code, b)
	}
	keep := filepath.Join(d.cfg.Data, networkDir, setupAPFile)
	if _, err := os.Stat(keep); err != nil {
		t.Fatalf("setup mode's access point is not kept: %v", err)
	}
	// A wrong password: the access point opens again, and the phone,
	// back on it, reads why.
	code, b := call(t, d, "POST", "/api/v1/network/wifi", owner, api.JoinRequest{SSID: "camd-sim-home", Passphrase: "not the passphrase"})
	if code != 422 {
		t.Fatalf("join: %d %s", code, b)
	}
	_, b = call(t, d, "GET", "/api/v1/network/wifi", owner, nil)
	if json.Unmarshal(b, &st); st.State != network.AccessPoint || st.LastJoin == nil || st.LastJoin.Reason != "wrong_key" {
		t.Fatalf("after a wrong password: %s", b)
	}
	code, b = call(t, d, "POST", "/api/v1/network/wifi", owner, api.JoinRequest{SSID: "camd-sim-home", Passphrase: "camd-sim-passphrase"})
	if code != 200 {
		t.Fatalf("join: %d %s", code, b)
	}
	_, b = call(t, d, "GET", "/api/v1/network/wifi", owner, nil)
	st = api.WiFiStatus{}
	if json.Unmarshal(b, &st); st.State != network.Connected || st.SSID != "camd-sim-home" || st.LastJoin == nil || st.LastJoin.Reason != "" {
		t.Fatalf("joined: %s", b)
	}
	// Setup is over: the next setup mode's access point is the new
	// secret's, which the setup code does not open.
	var next api.SetupAccessPoint
	if code, b := call(t, d, "GET", "/api/v1/network/wifi/setup", owner, nil); json.Unmarshal(b, &next) != nil || code != 200 || next.Open ||
		next.SSID == "" || next.Passphrase == setupAP.Passphrase {
		t.Fatalf("the next access point: %d %s (the one paired on: %+v)", code, b, setupAP)
	}
	if _, err := os.Stat(keep); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("setup is over, its access point is still kept: %v", err)
	}
	// Each step was an event, for owners only.
	var evs []eventlog.Event
	_, b = call(t, d, "GET", "/api/v1/events?type=wifi.*&after=0", owner, nil)
	json.Unmarshal(b, &evs)
	var kinds []string
	for _, e := range evs {
		kinds = append(kinds, e.Kind)
	}
	if want := []string{events.WiFiSetupEntered, events.WiFiJoinFailed, events.WiFiJoined, events.WiFiSetupLeft}; !slices.Equal(kinds, want) {
		t.Fatalf("events %v, want %v: %s", kinds, want, b)
	}
	if e := evs[0]; e.Data["ssid"] != setupSSID || e.Data["reason"] != "no network saved" {
		t.Errorf("setup mode entered: %+v", e)
	}
	if e := evs[1]; e.Data["ssid"] != "camd-sim-home" || e.Data["reason"] != "wrong_key" || e.Data["security"] != "psk" {
		t.Errorf("join failed: %+v", e)
	}
	if e := evs[2]; e.Data["ssid"] != "camd-sim-home" || e.Data["address"] == "" {
		t.Errorf("joined: %+v", e)
	}
	if strings.Contains(string(b), "not the passphrase") || strings.Contains(string(b), "camd-sim-passphrase") {
		t.Errorf("an event holds a passphrase: %s", b)
	}
	_, b = call(t, d, "GET", "/api/v1/events?type=wifi.*&after=0", viewer(t, d, owner), nil)
	if evs = nil; json.Unmarshal(b, &evs) != nil || len(evs) != 0 {
		t.Errorf("a viewer sees the Wi-Fi's events: %s", b)
	}
}

// The Wi-Fi's events are named as the catalogue names them.
func TestWiFiEventTypes(t *testing.T) {
	for _, k := range []network.EventKind{network.EventJoined, network.EventJoinFailed, network.EventDisconnected, network.EventSetupEntered, network.EventSetupLeft} {
		if ty := wifiEventTypes[k]; ty != "wifi."+string(k) || !slices.ContainsFunc(events.Types, func(t events.Type) bool { return t.Name == ty }) {
			t.Errorf("%s is %q", k, ty)
		}
	}
}

// The pair button released after 5 s (and before the 10 s of a factory
// reset) enters setup mode; a short press opens pairing, as before.
func TestPairButtonHeld5sEntersSetupMode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := boardDaemon(t)
		setups := 0
		d.board.events.setupHold = func() { setups++ }
		runBoard(t, d)
		press := func(held time.Duration) {
			d.board.sim.Press(sim.PairButton)
			time.Sleep(board.DefaultDebounce + held)
			d.board.sim.Release(sim.PairButton)
			time.Sleep(board.DefaultDebounce + time.Millisecond)
			synctest.Wait()
		}
		press(setupHold - 100*time.Millisecond)
		if _, until, _ := d.pairing.Window(); setups != 0 || until.IsZero() {
			t.Fatalf("a 4.9 s press: setup %d, pairing window until %v", setups, until)
		}
		press(setupHold + 100*time.Millisecond)
		if setups != 1 || len(d.reset) != 0 {
			t.Fatalf("a 5.1 s press: setup %d, reset %d", setups, len(d.reset))
		}
	})
}

// A factory reset forgets the Wi-Fi network wpa_supplicant keeps (the
// owner's passphrase) as it erases the data directory.
func TestFactoryResetForgetsWiFi(t *testing.T) {
	dir := t.TempDir()
	fake, err := wpatest.Start(dir, wpatest.AP{SSID: "home", BSSID: "02:00:00:00:01:00", Freq: 2437, Signal: -50, Security: network.PSK, Passphrase: "home passphrase", Address: "192.168.1.20"})
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	cfg := Defaults()
	cfg.Data, cfg.Listen = t.TempDir(), "127.0.0.1:0"
	cfg.Source, cfg.Passthrough.FIFO = "passthrough", filepath.Join(dir, "no-writer.fifo")
	cfg.Network.WiFi, cfg.Network.ControlSocket = "wpa_supplicant", fake.Path
	d, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ran := make(chan error, 1)
	go func() { ran <- d.Run(context.Background()) }()
	if code, b := call(t, d, "POST", "/api/v1/network/wifi", owner(t, d), api.JoinRequest{SSID: "home", Passphrase: "home passphrase"}); code != 200 {
		t.Fatalf("join: %d %s", code, b)
	}
	saves := fake.Saves()
	d.reset.request()
	if err := <-ran; !errors.Is(err, ErrFactoryReset) {
		t.Fatal(err)
	}
	if n := fake.Networks(); len(n) != 0 || fake.Saves() != saves+1 {
		t.Fatalf("after a factory reset wpa_supplicant keeps %v (saved %d times)", n, fake.Saves()-saves)
	}
}
