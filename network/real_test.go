package network

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/camd-project/camd/internal/testenv"
)

// realSupplicant runs Debian's wpa_supplicant with its wired driver on a
// veth in a network namespace of the test's own: no radio, but its real
// control interface, configuration parser and config writer.
func realSupplicant(t *testing.T) (conf, socket string) {
	t.Helper()
	testenv.Root(t, "wpa_supplicant in a network namespace")
	testenv.Tools(t, "ip", "wpa_supplicant")
	ns := fmt.Sprintf("camd-wpa-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	for _, args := range [][]string{
		{"-n", ns, "link", "add", "v0", "type", "veth", "peer", "name", "v1"},
		{"-n", ns, "link", "set", "v0", "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v %s", args, err, out)
		}
	}
	dir := t.TempDir()
	conf = filepath.Join(dir, "wpa_supplicant.conf")
	os.WriteFile(conf, []byte("ctrl_interface="+dir+"\nupdate_config=1\nap_scan=0\n"), 0o600)
	cmd := exec.Command("ip", "netns", "exec", ns, "wpa_supplicant", "-D", "wired", "-i", "v0", "-c", conf)
	var log strings.Builder
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	socket = filepath.Join(dir, "v0")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(socket); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("wpa_supplicant made no control socket: %s", log.String())
		}
	}
	return conf, socket
}

// The commands camd sends are the real wpa_supplicant's: its parser takes
// every SET_NETWORK (hex SSIDs, quoted passphrases with quotes inside,
// SAE, transition mode), its answers parse, and SAVE_CONFIG writes what
// was meant.
func TestRealSupplicantProtocol(t *testing.T) {
	conf, socket := realSupplicant(t)
	s, err := OpenSupplicant(SupplicantOptions{Socket: socket, ClientDir: t.TempDir(), ScanTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	st, err := s.Status(ctx)
	if err != nil || st.State != Disconnected || st.Saved {
		t.Fatalf("status: %+v %v", st, err)
	}
	for i, c := range []Credentials{
		{SSID: "wpa3 \"quoted\" \\ café", Security: SAE, Passphrase: `pa"ss; wörd`},
		{SSID: "home", Security: PSK, Passphrase: `pass "with" quotes`, Hidden: true},
		{SSID: "mixed", Security: PSKSAE, Passphrase: "mixed passphrase"},
		{SSID: "cafe", Security: Open},
	} {
		reply, err := s.request(ctx, "ADD_NETWORK")
		if err != nil || strings.TrimSpace(reply) != fmt.Sprint(i) {
			t.Fatalf("ADD_NETWORK: %q %v", reply, err)
		}
		for _, cmd := range setNetwork(i, c) {
			if err := s.ok(ctx, cmd); err != nil {
				t.Errorf("%v: %s: %v", c, strings.Fields(cmd)[2], err)
			}
		}
		if got, err := s.request(ctx, fmt.Sprintf("GET_NETWORK %d ssid", i)); err != nil || got != `"`+PrintfEncode(c.SSID)+`"` && got != hexSSID(c.SSID) {
			t.Errorf("GET_NETWORK ssid: %q %v", got, err)
		}
	}
	list, err := s.networks(ctx)
	if err != nil || len(list) != 4 || list[0].SSID != "wpa3 \"quoted\" \\ café" || !list[0].Disabled {
		t.Fatalf("LIST_NETWORKS: %+v %v", list, err)
	}
	if err := s.ok(ctx, "SAVE_CONFIG"); err != nil {
		t.Fatal(err)
	}
	saved, _ := os.ReadFile(conf)
	for _, want := range []string{
		`ssid=77706133202271756f74656422205c20636166c3a9`, "sae_password=" + hexSSID(`pa"ss; wörd`) /* written back as hex: not ASCII */, "key_mgmt=SAE", "ieee80211w=2",
		`ssid="home"`, `psk="pass "with" quotes"`, "scan_ssid=1", "key_mgmt=WPA-PSK SAE", "ieee80211w=1", "key_mgmt=NONE",
	} {
		if !strings.Contains(string(saved), want) {
			t.Errorf("the saved configuration lacks %s:\n%s", want, saved)
		}
	}
	// Scanning answers (a wired interface finds nothing, and reports no
	// scan results: Scan lists what there is after ScanTimeout).
	if _, err := s.Scan(ctx); err != nil {
		t.Errorf("scan: %v", err)
	}
	if err := s.Forget(ctx); err != nil {
		t.Fatal(err)
	}
	if st, err := s.Status(ctx); err != nil || st.Saved {
		t.Fatalf("forgotten: %+v %v", st, err)
	}
}
