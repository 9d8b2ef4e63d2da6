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

// The setup access point: hostapd gets a 0600 configuration with the
// SSID in hex and the derived passphrase, the interface the camera's
// address, the DHCP server runs; closing ends both, removes the address
// and the configuration. hostapd and dnsmasq are stand-ins here (no
// radio): a script that keeps the configuration it was given, and sleep.
func TestHostapdAccessPoint(t *testing.T) {
	testenv.Root(t, "an interface in a network namespace")
	testenv.Tools(t, "ip", "sh", "sleep")
	ns := fmt.Sprintf("camd-ap-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	if out, err := exec.Command("ip", "-n", ns, "link", "add", "v0", "type", "veth", "peer", "name", "v1").CombinedOutput(); err != nil {
		t.Fatalf("ip link add: %v %s", err, out)
	}
	dir := t.TempDir()
	kept := filepath.Join(dir, "kept.conf")
	h := NewHostapd(HostapdOptions{
		Interface: "v0", Dir: dir, IP: []string{"ip", "-n", ns},
		// cp then mv: the test reads the copy once it exists, whole.
		Hostapd: []string{"sh", "-c", `cp "$0" ` + kept + `.tmp && mv ` + kept + `.tmp ` + kept + ` && exec sleep 600`},
		DHCP:    []string{"sleep", "600"},
	})
	ap := SetupNetwork([]byte("0123456789abcdef"))
	if err := h.Start(context.Background(), ap); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "hostapd.conf")
	if fi, err := os.Stat(conf); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("configuration: %v %v", fi, err)
	}
	addr := func() string {
		out, _ := exec.Command("ip", "-n", ns, "addr", "show", "dev", "v0").CombinedOutput()
		return string(out)
	}
	if !strings.Contains(addr(), "192.168.4.1/24") {
		t.Errorf("no address on the interface:\n%s", addr())
	}
	waitForFile(t, kept)
	got, _ := os.ReadFile(kept)
	for _, want := range []string{"interface=v0\n", "ssid2=" + hexSSID(ap.SSID) + "\n", "wpa=2\n", "wpa_key_mgmt=WPA-PSK\n", "rsn_pairwise=CCMP\n", "wpa_passphrase=" + ap.Passphrase + "\n"} {
		if !strings.Contains(string(got), want) {
			t.Errorf("hostapd.conf lacks %q:\n%s", want, got)
		}
	}
	if err := h.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(conf); !os.IsNotExist(err) {
		t.Errorf("the configuration stays: %v", err)
	}
	if strings.Contains(addr(), "192.168.4.1") {
		t.Errorf("the address stays:\n%s", addr())
	}
	if err := h.Stop(); err != nil {
		t.Errorf("a second Stop: %v", err)
	}
}

// waitForFile waits for a file another process writes.
func waitForFile(t *testing.T, path string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never written", path)
		}
	}
}
