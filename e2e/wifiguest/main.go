// Command wifiguest is the init (PID 1) of the Wi-Fi test's guest
// (e2e/wifi_test.go): a Linux kernel with mac80211_hwsim booted under
// QEMU, two simulated radios on one simulated medium. The camera is this
// process: camd's setup mode (network.Setup with network.Hostapd) opens
// the access point on wlan0 with real hostapd and dnsmasq, derived from
// the setup secret on the kernel command line (camd.secret, hex). The
// phone is a child in a network namespace of its own, given wlan1's
// radio: real wpa_supplicant driven by camd's own network.Supplicant,
// busybox udhcpc for the lease. Both sides log at debug level to the
// console, which the test reads for passphrases. It reports on the
// serial console, one line each, prefixed "@wifi ":
//
//	ap JSON            the access point setup mode opened (SSID only)
//	event JSON         an event of the camera's setup mode
//	step NAME JSON     what the phone saw: scan, a join with the wrong
//	                   passphrase, with the right one (its lease and the
//	                   camera reached at 192.168.4.1), after the camera
//	                   left setup mode, and joining again then
//	done               all steps ran
//	error TEXT         the guest could not do its part
//
// With "phone" as its argument it is the phone: commands on standard
// input, answers on standard output, one JSON object a line each.
package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/camd-project/camd/e2e/guestinit"
	"github.com/camd-project/camd/network"
)

// cameraAddr is where the camera answers on its access point's network
// (network.Hostapd's default address).
const cameraAddr = "192.168.4.1:8443"

func report(format string, args ...any) {
	fmt.Printf("@wifi "+format+"\n", args...)
}

func reportJSON(kind string, v any) {
	b, _ := json.Marshal(v)
	report("%s %s", kind, b)
}

func main() {
	os.Setenv("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
	var err error
	if len(os.Args) > 1 && os.Args[1] == "phone" {
		err = phone()
		if err != nil {
			fmt.Fprintln(os.Stderr, "phone:", err)
			os.Exit(1)
		}
		return
	}
	if err = camera(); err != nil {
		report("error %v", err)
	}
	unix.Sync()
	unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
}

// command is what the camera asks of the phone.
type command struct {
	Op         string `json:"op"` // scan, join, wait-disconnected
	SSID       string `json:"ssid,omitempty"`
	Passphrase string `json:"passphrase,omitempty"`
}

// answer is the phone's answer.
type answer struct {
	Status   *network.Status   `json:"status,omitempty"`
	Networks []network.Network `json:"networks,omitempty"`
	Error    string            `json:"error,omitempty"`
	Reason   string            `json:"reason,omitempty"`
	// Reached is what the camera answered at cameraAddr after a join.
	Reached string `json:"reached,omitempty"`
	// Event is the phone's network.Supplicant's disconnection event.
	Event   *network.Event `json:"event,omitempty"`
	Seconds string         `json:"seconds"`
}

func camera() error {
	if err := guestinit.Mount(); err != nil {
		return err
	}
	args := guestinit.Args()
	secret, err := hex.DecodeString(args["secret"])
	if err != nil || len(secret) == 0 {
		return fmt.Errorf("camd.secret: %q", args["secret"])
	}
	if err := guestinit.LoadModules("/modules", map[string]string{"mac80211_hwsim": "radios=2"}); err != nil {
		return err
	}
	if err := guestinit.LoopbackUp(); err != nil {
		return err
	}
	// dnsmasq drops its privileges to nobody, and writes its pid file.
	os.MkdirAll("/etc", 0o755)
	os.WriteFile("/etc/passwd", []byte("root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"), 0o644)
	os.WriteFile("/etc/group", []byte("root:x:0:\ndip:x:30:\nnogroup:x:65534:\n"), 0o644)
	for _, d := range []string{"/var/run", "/run", "/tmp/ap", "/tmp/phone"} {
		os.MkdirAll(d, 0o755)
	}
	for _, iface := range []string{"wlan0", "wlan1"} {
		if err := waitFor(30*time.Second, func() bool { _, err := os.Stat("/sys/class/net/" + iface); return err == nil }); err != nil {
			return fmt.Errorf("%s never appeared (mac80211_hwsim)", iface)
		}
	}

	// The phone: a network namespace of its own, given wlan1's radio.
	ph := exec.Command("/init", "phone")
	ph.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWNET}
	ph.Stderr = os.Stderr
	toPhone, err := ph.StdinPipe()
	if err != nil {
		return err
	}
	fromPhone, err := ph.StdoutPipe()
	if err != nil {
		return err
	}
	if err := ph.Start(); err != nil {
		return err
	}
	defer ph.Process.Kill()
	phy, err := os.ReadFile("/sys/class/net/wlan1/phy80211/name")
	if err != nil {
		return err
	}
	if out, err := exec.Command("iw", "phy", strings.TrimSpace(string(phy)), "set", "netns", strconv.Itoa(ph.Process.Pid)).CombinedOutput(); err != nil {
		return fmt.Errorf("iw phy set netns: %v: %s", err, out)
	}
	answers := bufio.NewScanner(fromPhone)
	ask := func(c command) (answer, error) {
		b, _ := json.Marshal(c)
		if _, err := fmt.Fprintf(toPhone, "%s\n", b); err != nil {
			return answer{}, err
		}
		if !answers.Scan() {
			return answer{}, fmt.Errorf("the phone ended: %v", answers.Err())
		}
		var a answer
		return a, json.Unmarshal(answers.Bytes(), &a)
	}

	// The camera: setup mode at its first boot (no network saved), the
	// access point derived from the secret, and something to reach on it.
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	setup := network.NewSetup(network.SetupOptions{
		Link:   network.NewSim(network.SimNetworks()...),
		AP:     network.NewHostapd(network.HostapdOptions{Interface: "wlan0", Dir: "/tmp/ap", Logger: log}),
		Secret: func() []byte { return secret },
		Events: func(e network.Event) { reportJSON("event", e) },
		Logger: log,
	})
	defer setup.Close()
	ln, err := net.Listen("tcp", ":8443")
	if err != nil {
		return err
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, "camd\n")
			c.Close()
		}
	}()
	ctx := context.Background()
	if err := setup.Boot(ctx); err != nil {
		return err
	}
	st, err := setup.Status(ctx)
	if err != nil {
		return err
	}
	reportJSON("ap", st)
	ap := network.SetupNetwork(secret)

	wrong := ap.Passphrase[:len(ap.Passphrase)-1] + "x"
	if strings.HasSuffix(ap.Passphrase, "x") {
		wrong = ap.Passphrase[:len(ap.Passphrase)-1] + "y"
	}
	steps := []struct {
		name string
		c    command
		then func() error
	}{
		{"scan", command{Op: "scan"}, nil},
		{"wrong-passphrase", command{Op: "join", SSID: ap.SSID, Passphrase: wrong}, nil},
		{"join", command{Op: "join", SSID: ap.SSID, Passphrase: ap.Passphrase}, func() error {
			// The camera joins the home network: the access point closes.
			_, err := setup.Join(ctx, network.Credentials{SSID: "camd-sim-home", Passphrase: "camd-sim-passphrase"})
			return err
		}},
		{"ap-closed", command{Op: "wait-disconnected"}, nil},
		{"join-again", command{Op: "join", SSID: ap.SSID, Passphrase: ap.Passphrase}, nil},
	}
	for _, s := range steps {
		a, err := ask(s.c)
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		reportJSON("step "+s.name, a)
		if s.then != nil {
			if err := s.then(); err != nil {
				return fmt.Errorf("after %s: %w", s.name, err)
			}
		}
	}
	toPhone.Close()
	ph.Wait()
	report("done")
	return nil
}

func waitFor(limit time.Duration, ok func() bool) error {
	for deadline := time.Now().Add(limit); !ok(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			return errors.New("timed out")
		}
	}
	return nil
}

// phone runs wpa_supplicant on wlan1, once the camera moved its radio
// here, and answers the camera's commands through network.Supplicant.
func phone() error {
	if err := waitFor(30*time.Second, func() bool { _, err := net.InterfaceByName("wlan1"); return err == nil }); err != nil {
		return errors.New("wlan1 never came into the phone's namespace")
	}
	if err := guestinit.LoopbackUp(); err != nil {
		return err
	}
	dir := "/tmp/phone"
	conf := filepath.Join(dir, "wpa.conf")
	if err := os.WriteFile(conf, []byte("ctrl_interface="+dir+"/ctrl\nupdate_config=1\n"), 0o600); err != nil {
		return err
	}
	wpa := exec.Command("wpa_supplicant", "-i", "wlan1", "-D", "nl80211", "-c", conf)
	if err := wpa.Start(); err != nil {
		return err
	}
	defer wpa.Process.Kill()
	sock := filepath.Join(dir, "ctrl", "wlan1")
	if err := waitFor(30*time.Second, func() bool { _, err := os.Stat(sock); return err == nil }); err != nil {
		return errors.New("wpa_supplicant's control socket never appeared")
	}
	// udhcpc sets the address it leases (busybox's script does not come
	// with it).
	script := filepath.Join(dir, "udhcpc.sh")
	os.WriteFile(script, []byte("#!/usr/bin/busybox sh\n[ \"$1\" = bound ] && ip addr add \"$ip/$mask\" dev \"$interface\"\nexit 0\n"), 0o755)
	lost := make(chan network.Event, 16)
	sup, err := network.OpenSupplicant(network.SupplicantOptions{
		Events: func(e network.Event) { lost <- e },
		Socket: sock, ClientDir: dir, JoinTimeout: 45 * time.Second, LeaseTimeout: 30 * time.Second,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Lease: func(ctx context.Context) error {
			out, err := exec.CommandContext(ctx, "busybox", "udhcpc", "-i", "wlan1", "-n", "-q", "-f", "-t", "10", "-T", "2", "-s", script).CombinedOutput()
			if err != nil {
				return fmt.Errorf("udhcpc: %v: %s", err, out)
			}
			return nil
		},
	})
	if err != nil {
		return err
	}
	defer sup.Close()
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		var c command
		if err := json.Unmarshal(in.Bytes(), &c); err != nil {
			return err
		}
		start := time.Now()
		a := do(sup, c, lost)
		a.Seconds = strconv.FormatFloat(time.Since(start).Seconds(), 'f', 1, 64)
		b, _ := json.Marshal(a)
		fmt.Printf("%s\n", b)
	}
	return in.Err()
}

func do(sup *network.Supplicant, c command, lost <-chan network.Event) answer {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var a answer
	var err error
	switch c.Op {
	case "scan":
		a.Networks, err = sup.Scan(ctx)
	case "join":
		var st network.Status
		st, err = sup.Join(ctx, network.Credentials{SSID: c.SSID, Passphrase: c.Passphrase})
		a.Status = &st
		if err == nil {
			a.Reached, err = reach()
		}
	case "wait-disconnected":
		// camd's Supplicant tells of it once wpa_supplicant has.
		select {
		case e := <-lost:
			a.Event = &e
			var st network.Status
			st, err = sup.Status(ctx)
			a.Status = &st
		case <-time.After(30 * time.Second):
			err = errors.New("no disconnection event")
		}
	default:
		err = fmt.Errorf("unknown op %q", c.Op)
	}
	if err != nil {
		a.Error, a.Reason = err.Error(), network.Reason(err)
	}
	return a
}

// reach reads what the camera answers at cameraAddr.
func reach() (string, error) {
	c, err := net.DialTimeout("tcp", cameraAddr, 10*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(c)
	return strings.TrimSpace(string(b)), err
}
