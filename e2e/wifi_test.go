package e2e

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/camd-project/camd/internal/testenv"
	"github.com/camd-project/camd/network"
)

// The Wi-Fi guest's tools: the daemons camd runs in setup mode, the
// phone's wpa_supplicant and DHCP client, iw to hand the phone its radio.
var wifiGuestTools = []string{"qemu-system-x86_64", "hostapd", "dnsmasq", "wpa_supplicant", "iw", "ip", "busybox"}

// wifiGuestModules are the kernel modules the guest loads: the simulated
// radios, and the ciphers mac80211 asks the crypto API for by name (a
// guest without modprobe cannot have them loaded on demand): CCMP is
// ccm(aes) over ctr(aes), management frame protection cmac(aes).
var wifiGuestModules = []string{"mac80211_hwsim", "ctr", "ccm", "cmac"}

// wifiGuest builds the Wi-Fi guest: Debian's generic kernel (the cloud
// kernel has no Wi-Fi), and an initramfs of e2e/wifiguest as init, the
// tools with the shared libraries they load, and the modules.
func wifiGuest(t *testing.T) (kernel, initrd string) {
	t.Helper()
	need(t, wifiGuestTools...)
	kernels, _ := filepath.Glob("/boot/vmlinuz-*-amd64")
	var mods []string
	for _, k := range kernels {
		m, err := moduleClosure("/lib/modules/"+strings.TrimPrefix(filepath.Base(k), "vmlinuz-"), wifiGuestModules)
		if err == nil && slices.ContainsFunc(m, func(f string) bool { return moduleName(f) == "mac80211_hwsim" }) {
			kernel, mods = k, m
			break
		}
	}
	testenv.Need(t, kernel != "", "no Debian kernel with mac80211_hwsim in /boot (scripts/install-deps.sh installs linux-image-amd64)")

	dir := t.TempDir()
	init := filepath.Join(dir, "init")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", init, "./wifiguest")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the guest: %v\n%s", err, out)
	}
	var cpio cpioWriter
	dirs := map[string]bool{}
	mkdirs := func(path string) {
		var parts []string
		for d := filepath.Dir(path); d != "." && d != "/"; d = filepath.Dir(d) {
			parts = append(parts, d)
		}
		for _, d := range slices.Backward(parts) {
			if !dirs[d] {
				dirs[d] = true
				cpio.dir(d)
			}
		}
	}
	for _, d := range []string{"dev", "proc", "sys", "tmp", "modules", "etc", "usr/bin", "usr/sbin"} {
		mkdirs(d + "/x")
	}
	cpio.node("dev/console", 5, 1)
	if err := cpio.file("init", init, 0o755); err != nil {
		t.Fatal(err)
	}
	// Each tool where the host has it, and every library it loads
	// (ldd's list, the dynamic loader included) at the same path.
	libs := map[string]bool{}
	for _, tool := range wifiGuestTools[1:] {
		path, _ := exec.LookPath(tool)
		real, err := filepath.EvalSymlinks(path)
		if err != nil {
			t.Fatal(err)
		}
		name := "usr/bin/" + tool
		if strings.Contains(path, "/sbin/") {
			name = "usr/sbin/" + tool
		}
		if err := cpio.file(name, real, 0o755); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("ldd", real).Output()
		if err != nil {
			t.Fatalf("ldd %s: %v", real, err)
		}
		for _, l := range strings.Split(string(out), "\n") {
			f := strings.Fields(l)
			switch {
			case len(f) >= 3 && f[1] == "=>" && strings.HasPrefix(f[2], "/"):
				libs[f[2]] = true
			case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
				libs[f[0]] = true
			}
		}
	}
	for _, lib := range slices.Sorted(func(yield func(string) bool) {
		for l := range libs {
			if !yield(l) {
				return
			}
		}
	}) {
		real, err := filepath.EvalSymlinks(lib)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(lib, "/")
		mkdirs(name)
		if err := cpio.file(name, real, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var order []string
	for _, m := range mods {
		base := filepath.Base(m)
		order = append(order, base)
		if err := cpio.file("modules/"+base, m, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cpio.data("modules/order", []byte(strings.Join(order, "\n")+"\n"), 0o644)
	initrd = filepath.Join(dir, "initramfs.cpio")
	if err := os.WriteFile(initrd, cpio.close(), 0o644); err != nil {
		t.Fatal(err)
	}
	return kernel, initrd
}

// wifiStep is one of the guest's "@wifi step" reports: what the phone saw.
type wifiStep struct {
	Status   *network.Status   `json:"status"`
	Networks []network.Network `json:"networks"`
	Error    string            `json:"error"`
	Reason   string            `json:"reason"`
	Reached  string            `json:"reached"`
	Event    *network.Event    `json:"event"`
	Seconds  string            `json:"seconds"`
}

// TestWiFiSetupOnRadios runs setup mode on real radios: a guest kernel
// with two mac80211_hwsim radios, camd's setup mode (network.Setup and
// network.Hostapd) serving the access point derived from a setup secret
// with real hostapd and dnsmasq, and a phone (real wpa_supplicant,
// driven by camd's network.Supplicant, with busybox udhcpc) in a network
// namespace of its own on the other radio. The phone finds the access
// point in its scan (WPA2), fails to join with a wrong passphrase (the
// reason: wrong_key), joins with the derived one, gets a lease from
// dnsmasq and reaches the camera at 192.168.4.1; when the camera joins
// its home network the access point closes, the phone is cut off (its
// Supplicant tells of the disconnection, from wpa_supplicant's own
// event), and joining again finds no such network. Setup mode's events
// come in order. camd's logs of both sides, at
// debug level, hold neither passphrase. docs/network.md, "Real radios",
// says what it costs.
func TestWiFiSetupOnRadios(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a guest under emulation")
	}
	kernel, initrd := wifiGuest(t)
	secret := make([]byte, 16)
	rand.Read(secret)
	ap := network.SetupNetwork(secret)

	cmd := guestQEMU(kernel, initrd, "camd.secret="+hex.EncodeToString(secret), 512)
	stdout, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdout.Close()
	cmd.Stdout, cmd.Stderr = w, w
	started := time.Now()
	err = cmd.Start()
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	defer func() { cmd.Process.Kill(); <-exited }()
	timer := time.AfterFunc(5*time.Minute, func() { cmd.Process.Kill() })
	defer timer.Stop()

	var console []string
	steps := map[string]wifiStep{}
	var apStatus *network.Status
	var setupEvents []network.Event
	done := false
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		text, ok := strings.CutPrefix(sc.Text(), "@wifi ")
		if !ok {
			console = append(console, sc.Text())
			continue
		}
		kind, rest, _ := strings.Cut(text, " ")
		switch kind {
		case "ap":
			apStatus = &network.Status{}
			if err := json.Unmarshal([]byte(rest), apStatus); err != nil {
				t.Fatalf("ap: %v", err)
			}
			t.Logf("%v: access point open", time.Since(started).Round(time.Second))
		case "step":
			name, js, _ := strings.Cut(rest, " ")
			var s wifiStep
			if err := json.Unmarshal([]byte(js), &s); err != nil {
				t.Fatalf("step %s: %v", name, err)
			}
			steps[name] = s
			t.Logf("%v: %s (%ss): %s", time.Since(started).Round(time.Second), name, s.Seconds, js)
		case "event":
			var e network.Event
			if err := json.Unmarshal([]byte(rest), &e); err != nil {
				t.Fatalf("event: %v", err)
			}
			setupEvents = append(setupEvents, e)
		case "done":
			done = true
		case "error":
			t.Errorf("guest: %s", rest)
		}
	}
	elapsed := time.Since(started)
	if !done {
		t.Fatalf("the guest did not finish (%v); its console:\n%s", elapsed.Round(time.Second), strings.Join(console, "\n"))
	}
	t.Logf("boot, five steps and power off: %v", elapsed.Round(time.Second))
	defer func() {
		if t.Failed() {
			t.Logf("the guest's console:\n%s", strings.Join(console, "\n"))
		}
	}()

	if apStatus == nil || apStatus.State != network.AccessPoint || apStatus.SSID != ap.SSID {
		t.Errorf("setup mode's status: %+v, want the access point %s", apStatus, ap.SSID)
	}
	i := slices.IndexFunc(steps["scan"].Networks, func(n network.Network) bool { return n.SSID == ap.SSID })
	if i < 0 {
		t.Errorf("the phone's scan did not find %s: %+v", ap.SSID, steps["scan"])
	} else if n := steps["scan"].Networks[i]; n.Security != network.PSK || n.Channel != 6 {
		t.Errorf("the access point in the phone's scan: %+v, want WPA2 (psk) on channel 6", n)
	}
	if s := steps["wrong-passphrase"]; s.Reason != "wrong_key" {
		t.Errorf("joining with a wrong passphrase: %+v, want reason wrong_key", s)
	}
	s := steps["join"]
	if s.Error != "" || s.Status == nil || s.Status.State != network.Connected || s.Status.SSID != ap.SSID {
		t.Errorf("joining with the derived passphrase: %+v", s)
	} else if !strings.HasPrefix(s.Status.Address, "192.168.4.") || s.Reached != "camd" {
		t.Errorf("after joining: address %q (want a lease in 192.168.4.10-50), the camera answered %q", s.Status.Address, s.Reached)
	}
	if s := steps["ap-closed"]; s.Error != "" || s.Event == nil || *s.Event != (network.Event{Kind: network.EventDisconnected, SSID: ap.SSID, Reason: s.Event.Reason}) ||
		s.Event.Reason == "" || s.Status == nil || s.Status.State == network.Connected {
		t.Errorf("the phone was not cut off when the camera left setup mode, or its Supplicant did not tell: %+v", s)
	}
	var kinds []network.EventKind
	for _, e := range setupEvents {
		kinds = append(kinds, e.Kind)
	}
	if want := []network.EventKind{network.EventSetupEntered, network.EventJoined, network.EventSetupLeft}; !slices.Equal(kinds, want) ||
		setupEvents[0].SSID != ap.SSID {
		t.Errorf("setup mode's events: %+v, want %v", setupEvents, want)
	}
	if s := steps["join-again"]; s.Reason != "not_found" {
		t.Errorf("joining the closed access point: %+v, want reason not_found", s)
	}
	// camd's logs on both sides, at debug level, hold no passphrase.
	logged := strings.Join(console, "\n")
	if !strings.Contains(logged, "network: wpa_supplicant: trying") {
		t.Errorf("the guest's console holds no log of camd's Supplicant")
	}
	for _, p := range []string{ap.Passphrase, ap.Passphrase[:len(ap.Passphrase)-1]} {
		if strings.Contains(logged, p) {
			t.Errorf("a passphrase is in the guest's log")
		}
	}
}
