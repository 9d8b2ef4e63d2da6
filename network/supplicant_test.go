package network_test

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/camd-project/camd/internal/testenv"
	"github.com/camd-project/camd/network"
	"github.com/camd-project/camd/network/wpatest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// neighbourhood is the access points of these tests.
func neighbourhood() []wpatest.AP {
	return []wpatest.AP{
		{SSID: "home", BSSID: "02:00:00:00:01:00", Freq: 2437, Signal: -45, Security: network.PSK, Passphrase: "home passphrase", Address: "192.168.1.20"},
		{SSID: "home", BSSID: "02:00:00:00:01:01", Freq: 5180, Signal: -60, Security: network.PSK, Passphrase: "home passphrase", Address: "192.168.1.20"},
		{SSID: "wpa3 \"quoted\" \\ café", BSSID: "02:00:00:00:02:00", Freq: 5745, Signal: -55, Security: network.SAE, Passphrase: `pa"ss; word`, Address: "192.168.2.20"},
		{SSID: "mixed", BSSID: "02:00:00:00:03:00", Freq: 2412, Signal: -70, Security: network.PSKSAE, Passphrase: "mixed passphrase", Address: "192.168.3.20"},
		{SSID: "cafe", BSSID: "02:00:00:00:04:00", Freq: 2462, Signal: -80, Security: network.Open, Address: "10.0.0.20"},
		{SSID: "no dhcp", BSSID: "02:00:00:00:05:00", Freq: 2412, Signal: -65, Security: network.PSK, Passphrase: "no dhcp passphrase"},
		{SSID: "", BSSID: "02:00:00:00:06:00", Freq: 2412, Signal: -30, Security: network.PSK, Passphrase: "hidden passphrase"},
	}
}

// fake starts a fake wpa_supplicant and a Supplicant talking to it,
// logging into log.
func fake(t *testing.T, log *bytes.Buffer, opts network.SupplicantOptions) (*wpatest.Supplicant, *network.Supplicant) {
	t.Helper()
	dir := t.TempDir()
	f, err := wpatest.Start(dir, neighbourhood()...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	opts.Socket, opts.ClientDir = f.Path, dir
	opts.JoinTimeout = cmp.Or(opts.JoinTimeout, 10*time.Second)
	// The fake gives a lease with the association or never: a short
	// timeout only shortens the "no lease" cases.
	opts.LeaseTimeout = cmp.Or(opts.LeaseTimeout, 300*time.Millisecond)
	if log != nil {
		opts.Logger = slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	s, err := network.OpenSupplicant(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return f, s
}

func TestSupplicantScan(t *testing.T) {
	_, s := fake(t, nil, network.SupplicantOptions{})
	list, err := s.Scan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, n := range list {
		got = append(got, n.SSID)
	}
	want := []string{"home", "wpa3 \"quoted\" \\ café", "no dhcp", "mixed", "cafe"}
	if !slices.Equal(got, want) {
		t.Fatalf("scan: %q, want %q (strongest first, one per SSID, hidden left out)", got, want)
	}
	if h := list[0]; h.Signal != -45 || h.Channel != 6 || h.Security != network.PSK || h.BSSID != "02:00:00:00:01:00" {
		t.Errorf("home: %+v", h)
	}
	if list[1].Security != network.SAE || list[1].Channel != 149 || list[3].Security != network.PSKSAE || list[4].Security != network.Open {
		t.Errorf("securities and channels: %+v", list)
	}
}

// Joining: every security, quoted SSIDs and passphrases, and each way a
// join fails, which keeps the network the camera had.
func TestSupplicantJoin(t *testing.T) {
	ctx := context.Background()
	var log bytes.Buffer
	f, s := fake(t, &log, network.SupplicantOptions{})
	st, err := s.Join(ctx, network.Credentials{SSID: "home", Passphrase: "home passphrase"})
	if err != nil {
		t.Fatal(err)
	}
	if st.State != network.Connected || st.SSID != "home" || st.Address != "192.168.1.20" || st.Signal != -45 || !st.Saved || st.Security != network.PSK {
		t.Fatalf("joined home: %+v", st)
	}
	if f.Saves() != 1 {
		t.Errorf("saved %d times", f.Saves())
	}

	for _, c := range []struct {
		creds network.Credentials
		err   error
	}{
		{network.Credentials{SSID: "home", Passphrase: "not the passphrase"}, network.ErrWrongKey},
		{network.Credentials{SSID: "gone", Passphrase: "some passphrase"}, network.ErrNotFound},
		{network.Credentials{SSID: "no dhcp", Passphrase: "no dhcp passphrase"}, network.ErrNoLease},
		{network.Credentials{SSID: "wpa3 \"quoted\" \\ café", Security: network.SAE, Passphrase: "wrong"}, network.ErrWrongKey},
		{network.Credentials{SSID: "home", Passphrase: "short"}, network.ErrCredentials},
	} {
		t.Run(c.err.Error(), func(t *testing.T) {
			cmds := len(f.Commands())
			_, err := s.Join(ctx, c.creds)
			if !errors.Is(err, c.err) {
				t.Fatalf("join %v: %v, want %v", c.creds, err, c.err)
			}
			if slices.ContainsFunc(f.Commands()[cmds:], func(cmd string) bool { return strings.HasPrefix(cmd, "SAVE_CONFIG") }) {
				t.Errorf("a failed join saved the configuration")
			}
			testenv.Eventually(t, "back on home", func() bool { return f.Current() == "home" })
			if nets := f.Networks(); len(nets) != 1 || slices.Collect(mapValues(nets))[0] != "home" {
				t.Errorf("networks after a failed join: %v", nets)
			}
		})
	}

	for _, c := range []network.Credentials{
		{SSID: "wpa3 \"quoted\" \\ café", Security: network.SAE, Passphrase: `pa"ss; word`},
		{SSID: "mixed", Security: network.PSKSAE, Passphrase: "mixed passphrase"},
		{SSID: "cafe"},
		{SSID: "home", Passphrase: "home passphrase", Hidden: true},
	} {
		st, err := s.Join(ctx, c)
		if err != nil || st.State != network.Connected || st.SSID != c.SSID {
			t.Fatalf("join %v: %+v %v", c, st, err)
		}
		if nets := f.Networks(); len(nets) != 1 {
			t.Errorf("the old network stays beside the new: %v", nets)
		}
	}
	if !slices.Contains(f.Commands(), "SET_NETWORK 8 scan_ssid 1") {
		t.Errorf("a hidden network is not probed for: %q", f.Commands())
	}
	if strings.Contains(log.String(), "passphrase") && strings.Contains(log.String(), "home passphrase") {
		t.Errorf("the passphrase was logged:\n%s", log.String())
	}

	if err := s.Forget(ctx); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.Status(ctx); st.State != network.Disconnected || st.Saved || len(f.Networks()) != 0 {
		t.Fatalf("after forget: %+v %v", st, f.Networks())
	}
}

// A join with no network before it leaves none.
func TestSupplicantJoinFailsFromNothing(t *testing.T) {
	f, s := fake(t, nil, network.SupplicantOptions{})
	if _, err := s.Join(context.Background(), network.Credentials{SSID: "home", Passphrase: "wrong passphrase"}); !errors.Is(err, network.ErrWrongKey) {
		t.Fatal(err)
	}
	if len(f.Networks()) != 0 || f.Current() != "" {
		t.Fatalf("left behind: %v %q", f.Networks(), f.Current())
	}
	st, err := s.Status(context.Background())
	if err != nil || st.State != network.Disconnected || st.Saved {
		t.Fatalf("status: %+v %v", st, err)
	}
}

// The SSID goes as hex, strings quoted as wpa_config_parse_string reads
// them; no command carries a newline.
func TestSupplicantQuoting(t *testing.T) {
	f, s := fake(t, nil, network.SupplicantOptions{})
	if _, err := s.Join(context.Background(), network.Credentials{SSID: "wpa3 \"quoted\" \\ café", Security: network.SAE, Passphrase: `pa"ss; word`}); err != nil {
		t.Fatal(err)
	}
	cmds := f.Commands()
	for _, want := range []string{
		"SET_NETWORK 0 ssid 77706133202271756f74656422205c20636166c3a9",
		"SET_NETWORK 0 key_mgmt SAE",
		"SET_NETWORK 0 ieee80211w 2",
		`SET_NETWORK 0 sae_password "pa"ss; word"`,
		"SELECT_NETWORK 0",
	} {
		if !slices.Contains(cmds, want) {
			t.Errorf("no %q in %q", want, cmds)
		}
	}
}

// Slow, missing and malformed answers end as errors that name the
// command but never its value, and the next command works.
func TestSupplicantBadAnswers(t *testing.T) {
	ctx := context.Background()
	f, s := fake(t, nil, network.SupplicantOptions{CommandTimeout: 200 * time.Millisecond})
	for _, c := range []struct {
		name  string
		fault func()
		call  func() error
	}{
		{"no answer", func() { f.Drop("STATUS", true) }, func() error { _, err := s.Status(ctx); return err }},
		{"slow answer", func() { f.Slow("STATUS", time.Second) }, func() error { _, err := s.Status(ctx); return err }},
		{"malformed status", func() { f.Answer("STATUS", "wpa_state\x00COMPLETED\nnonsense") }, func() error { _, err := s.Status(ctx); return err }},
		{"malformed scan", func() {
			f.Answer("SCAN_RESULTS", "bssid / frequency / signal level / flags / ssid\n02:00:00:00:01:00\tnot-a-number\t-40\t[ESS]\tx\n")
		}, func() error { _, err := s.Scan(ctx); return err }},
		{"no header", func() { f.Answer("SCAN_RESULTS", "<html>") }, func() error { _, err := s.Scan(ctx); return err }},
		{"failed set", func() { f.Answer("SET_NETWORK", "FAIL\n") }, func() error {
			_, err := s.Join(ctx, network.Credentials{SSID: "home", Passphrase: "home passphrase"})
			if err != nil && strings.Contains(err.Error(), "home passphrase") {
				t.Errorf("the error carries the passphrase: %v", err)
			}
			return err
		}},
		{"bad network id", func() { f.Answer("ADD_NETWORK", "-1\n") }, func() error {
			_, err := s.Join(ctx, network.Credentials{SSID: "home", Passphrase: "home passphrase"})
			return err
		}},
		{"unknown command", func() { f.Answer("LIST_NETWORKS", "UNKNOWN COMMAND\n") }, func() error { _, err := s.Status(ctx); return err }},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.fault()
			err := c.call()
			if !errors.Is(err, network.ErrSupplicant) {
				t.Fatalf("%v, want ErrSupplicant", err)
			}
			f.Drop("STATUS", false)
			f.Slow("STATUS", 0)
			for _, v := range []string{"STATUS", "SCAN_RESULTS", "SET_NETWORK", "ADD_NETWORK", "LIST_NETWORKS"} {
				f.Answer(v, "")
			}
			if st, err := s.Status(ctx); err != nil || st.State != network.Disconnected {
				t.Fatalf("the next command: %+v %v", st, err)
			}
		})
	}
}

// A join that hears nothing ends at the join timeout, and goes back.
func TestSupplicantJoinTimeout(t *testing.T) {
	f, s := fake(t, nil, network.SupplicantOptions{})
	f.AssocDelay(time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := s.Join(ctx, network.Credentials{SSID: "home", Passphrase: "home passphrase"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("%v", err)
	}
	if len(f.Networks()) != 0 {
		t.Fatalf("the network that did not join stays: %v", f.Networks())
	}
}

// A SAVE_CONFIG that fails (update_config=0) keeps the join.
func TestSupplicantNoSave(t *testing.T) {
	f, s := fake(t, nil, network.SupplicantOptions{})
	f.NoSave()
	if st, err := s.Join(context.Background(), network.Credentials{SSID: "cafe"}); err != nil || st.State != network.Connected {
		t.Fatalf("%+v %v", st, err)
	}
}

func TestSupplicantNeedsASocket(t *testing.T) {
	if _, err := network.OpenSupplicant(network.SupplicantOptions{}); !errors.Is(err, network.ErrSupplicant) {
		t.Fatal(err)
	}
	if _, err := network.OpenSupplicant(network.SupplicantOptions{Socket: t.TempDir() + "/none", ClientDir: t.TempDir()}); !errors.Is(err, network.ErrSupplicant) {
		t.Fatal(err)
	}
}
func mapValues[K comparable, V any](m map[K]V) func(func(V) bool) {
	return func(yield func(V) bool) {
		for _, v := range m {
			if !yield(v) {
				return
			}
		}
	}
}

// wpa_supplicant restarting (a new process, a new socket at the same
// path, none of the old state): camd's next commands reach it, and it
// attaches again for events, so a join works.
func TestSupplicantRestarts(t *testing.T) {
	dir := t.TempDir()
	f, err := wpatest.Start(dir, neighbourhood()...)
	if err != nil {
		t.Fatal(err)
	}
	s, err := network.OpenSupplicant(network.SupplicantOptions{Socket: f.Path, ClientDir: dir, Keepalive: 20 * time.Millisecond, LeaseTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Status(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.Close()
	f, err = wpatest.Start(dir, neighbourhood()...)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	testenv.Eventually(t, "camd attached to the new wpa_supplicant", func() bool { return f.Attached() > 0 })
	st, err := s.Join(context.Background(), network.Credentials{SSID: "cafe"})
	if err != nil || st.State != network.Connected {
		t.Fatalf("join after a restart: %+v %v", st, err)
	}
}
