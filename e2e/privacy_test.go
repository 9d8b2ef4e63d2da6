package e2e

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/camd-project/camd/device/api"
	"github.com/camd-project/camd/discovery/netnstest"
	"github.com/camd-project/camd/notify/webpush"
)

// frame is one frame a capture saw, told in a line; lan is whether it is
// what a device on a LAN sends without anyone asking (address
// resolution, multicast group reports, camd's discovery announcements).
type frame struct {
	desc string
	lan  bool
	to   netip.AddrPort // a TCP or UDP packet's destination
}

// capture is a packet socket on an interface of a namespace: every frame
// that arrives from the other end of the link, in order.
type capture struct {
	f    *os.File
	mu   sync.Mutex
	seen []frame
	wake chan struct{} // closed and replaced at each frame
	done chan struct{}
}

// captureOn opens a packet socket on ifname in namespace ns and reads
// it until the test ends.
func captureOn(t *testing.T, ns, ifname string) *capture {
	t.Helper()
	c := &capture{wake: make(chan struct{}), done: make(chan struct{})}
	proto := int(htons(unix.ETH_P_ALL))
	err := netnstest.Do(ns, func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, proto)
		if err != nil {
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: uint16(proto), Ifindex: ifi.Index}); err != nil {
			unix.Close(fd)
			return err
		}
		// Non-blocking: the runtime's poller reads it, and Close ends a
		// read that waits.
		c.f = os.NewFile(uintptr(fd), "packet socket on "+ns+"/"+ifname)
		return nil
	})
	if err != nil {
		t.Fatalf("packet socket in %s: %v", ns, err)
	}
	go c.read()
	t.Cleanup(func() { c.f.Close(); <-c.done })
	return c
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (c *capture) read() {
	defer close(c.done)
	raw, err := c.f.SyscallConn()
	if err != nil {
		return
	}
	buf := make([]byte, 65536)
	for {
		var n int
		var from unix.Sockaddr
		var rerr error
		err := raw.Read(func(fd uintptr) bool {
			n, from, rerr = unix.Recvfrom(int(fd), buf, 0)
			return !errors.Is(rerr, unix.EAGAIN)
		})
		if err != nil || rerr != nil {
			return // closed
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue // sent from this side
		}
		fr := describe(buf[:n])
		c.mu.Lock()
		c.seen = append(c.seen, fr)
		close(c.wake)
		c.wake = make(chan struct{})
		c.mu.Unlock()
	}
}

// lanGroups are the multicast groups and ports camd's discovery
// announces on, on by default (docs/discovery.md): mDNS and WS-Discovery.
var lanGroups = map[netip.AddrPort]bool{
	netip.MustParseAddrPort("224.0.0.251:5353"):     true,
	netip.MustParseAddrPort("239.255.255.250:3702"): true,
	netip.MustParseAddrPort("[ff02::fb]:5353"):      true,
	netip.MustParseAddrPort("[ff02::c]:3702"):       true,
}

// describe tells what an Ethernet frame carries and whether it is LAN
// chatter (lan) or data on its way somewhere.
func describe(b []byte) frame {
	if len(b) < 14 {
		return frame{desc: "runt frame"}
	}
	et, p := binary.BigEndian.Uint16(b[12:14]), b[14:]
	switch et {
	case unix.ETH_P_ARP:
		return frame{desc: "arp", lan: true}
	case unix.ETH_P_IP:
		if len(p) < 20 {
			return frame{desc: "short ipv4"}
		}
		ihl := int(p[0]&0x0f) * 4
		src, _ := netip.AddrFromSlice(p[12:16])
		dst, _ := netip.AddrFromSlice(p[16:20])
		if p[9] == 2 {
			return frame{desc: fmt.Sprintf("igmp %s → %s", src, dst), lan: true}
		}
		return transport(p[9], src, dst, p[min(ihl, len(p)):])
	case unix.ETH_P_IPV6:
		if len(p) < 40 {
			return frame{desc: "short ipv6"}
		}
		src, _ := netip.AddrFromSlice(p[8:24])
		dst, _ := netip.AddrFromSlice(p[24:40])
		next, rest := p[6], p[40:]
		if next == 0 && len(rest) >= 2 { // hop-by-hop options (MLD reports)
			next, rest = rest[0], rest[min(int(rest[1]+1)*8, len(rest)):]
		}
		if next == 58 && len(rest) > 0 {
			// Neighbour discovery and multicast listener reports: the
			// kernel's, for the link.
			typ := rest[0]
			return frame{desc: fmt.Sprintf("icmpv6 type %d %s → %s", typ, src, dst), lan: typ >= 133 && typ <= 137 || typ == 143 || typ == 130 || typ == 131 || typ == 132}
		}
		return transport(next, src, dst, rest)
	}
	return frame{desc: fmt.Sprintf("ethertype %#04x", et)}
}

// transport tells a TCP or UDP packet by its addresses and ports.
func transport(proto byte, src, dst netip.Addr, p []byte) frame {
	name := map[byte]string{6: "tcp", 17: "udp", 1: "icmp"}[proto]
	if name == "" {
		name = fmt.Sprintf("protocol %d", proto)
	}
	if (proto != 6 && proto != 17) || len(p) < 4 {
		return frame{desc: fmt.Sprintf("%s %s → %s", name, src, dst)}
	}
	from := netip.AddrPortFrom(src, binary.BigEndian.Uint16(p[0:2]))
	to := netip.AddrPortFrom(dst, binary.BigEndian.Uint16(p[2:4]))
	flags := ""
	if proto == 6 && len(p) >= 14 && p[13]&0x02 != 0 {
		flags = " SYN"
	}
	return frame{desc: fmt.Sprintf("%s %s → %s%s", name, from, to, flags), lan: proto == 17 && lanGroups[to], to: to}
}

// frames returns what was seen so far.
func (c *capture) frames() []frame {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]frame(nil), c.seen...)
}

// waitFor waits until a frame whose line contains s arrives.
func (c *capture) waitFor(t *testing.T, s string, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for {
		c.mu.Lock()
		for _, f := range c.seen {
			if strings.Contains(f.desc, s) {
				c.mu.Unlock()
				return
			}
		}
		wake := c.wake
		c.mu.Unlock()
		select {
		case <-wake:
		case <-deadline:
			t.Fatalf("the capture saw no %q within %v; it saw %v", s, d, c.frames())
		}
	}
}

// camctlMust runs camctl inside namespace ns and fails the test when it fails.
func camctlMust(t *testing.T, ns string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := camctlIn(t, ctx, ns, args...)
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("camctl %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr)
	}
	return out
}

// subscribePush subscribes a browser's push endpoint with the owner's
// token, over a connection made inside namespace ns to camd at addr.
func subscribePush(t *testing.T, ns, addr, token, endpoint string) {
	t.Helper()
	k, _ := ecdh.P256().GenerateKey(rand.Reader)
	auth := make([]byte, 16)
	rand.Read(auth)
	body, _ := json.Marshal(api.SubscribeRequest{Endpoint: endpoint, Keys: webpush.Keys{
		P256dh: base64.RawURLEncoding.EncodeToString(k.PublicKey().Bytes()), Auth: base64.RawURLEncoding.EncodeToString(auth)}})
	client := insecureClient()
	client.Transport.(*http.Transport).DialContext = func(ctx context.Context, network, address string) (net.Conn, error) {
		var conn net.Conn
		err := netnstest.Do(ns, func() error {
			var err error
			conn, err = (&net.Dialer{}).DialContext(ctx, network, address)
			return err
		})
		return conn, err
	}
	req, _ := http.NewRequest("POST", "https://"+addr+"/api/v1/push/subscriptions", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("push subscription: %d %s", resp.StatusCode, b)
	}
}

// blackhole is where the world would be: an address of TEST-NET-3
// (RFC 5737) that the namespace routes to the capture's side.
const blackhole = "203.0.113.7"

// resolver is the namespace's DNS server, out there as well.
const resolver = "203.0.113.53"

// Nothing leaves the device unless the owner turned it on
// (docs/privacy.md): camd runs with its default configuration in a
// namespace whose every route, IPv4 and IPv6, leads to a link where a
// packet socket watches; the phone (camctl) talks to it over the
// namespace's loopback. First boot, pairing, live view, a snapshot,
// recording, motion, a doorbell ring, a crash and a restart send nothing
// but LAN chatter
// (address resolution, group reports, camd's discovery announcements).
// Then the owner turns sinks on one at a time (a webhook to an address,
// Web Push to a push service's host name, an MQTT broker and a crash collector in the
// configuration, a report sent): the capture sees camd reach each once
// it is on (so the test can fail), and nothing else.
func TestNothingLeavesUnlessTurnedOn(t *testing.T) {
	netnstest.Need(t)
	p := netnstest.NewPair(t)
	for _, r := range [][]string{
		{"-n", p.A, "route", "replace", "default", "via", p.AddrB, "dev", "eth0"},
		{"-n", p.A, "-6", "route", "replace", "default", "via", p.AddrB6, "dev", "eth0"},
	} {
		if out, err := exec.Command("ip", r...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(r, " "), err, out)
		}
	}
	// The namespace's resolver is out there too (ip netns exec mounts
	// this file on /etc/resolv.conf): a name looked up is a packet the
	// capture sees, whatever resolver the host uses (127.0.0.53 would
	// keep it on the loopback).
	etc := filepath.Join("/etc/netns", p.A)
	if err := os.MkdirAll(etc, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(etc) })
	if err := os.WriteFile(filepath.Join(etc, "resolv.conf"), []byte("nameserver "+resolver+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := captureOn(t, p.B, "eth0")

	// First boot, default configuration, on every address of the
	// namespace (as a camera on a LAN: discovery announces), on a free port.
	d := startInNetns(t, p.A)
	out, err := exec.Command(filepath.Join(bin, "camd"), "qr", "--data", d.data).CombinedOutput()
	if err != nil {
		t.Fatalf("camd qr: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	store := filepath.Join(t.TempDir(), "credentials.json")
	camctlMust(t, p.A, "pair", "--store", store, "--name", "privacy", "--addr", "127.0.0.1:"+d.port(t), lines[len(lines)-1])
	camctlMust(t, p.A, "view", "--store", store, "--seconds", "2")
	camctlMust(t, p.A, "snapshot", "--store", store, "--out", filepath.Join(t.TempDir(), "still.jpg"))
	// A minute of motion (the synthetic camera's moving picture, and a
	// trigger) with a ring in it: the capture watches that minute. The
	// wait is the window observed, not a synchronisation.
	motion := time.Now()
	camctlMust(t, p.A, "recordings", "trigger", "--store", store, "--seconds", "60")
	camctlMust(t, p.A, "call", "ring", "--store", store)
	camctlMust(t, p.A, "recordings", "list", "--store", store, "--from", "-5m")
	waitLog(t, d, `msg="camd: motion"`)
	waitLog(t, d, `msg="calls: ringing"`)
	<-time.After(time.Until(motion.Add(time.Minute)))

	// A crash (SIGQUIT: the runtime's trace goes to the crash file, as
	// a fatal error's does) and a restart: the report stays on the
	// device (crash_reports: ask).
	d.cmd.Process.Signal(syscall.SIGQUIT)
	if err := <-d.done; err == nil {
		t.Fatal("camd exited cleanly on SIGQUIT")
	}
	d = &daemon{t: t, data: d.data}
	d.start(t, netnstest.Command(p.A, filepath.Join(bin, "camd"), runArgs(d.data, "0.0.0.0:0")...), 30*time.Second)
	waitLog(t, d, "camd: the previous run crashed; a crash report is kept")
	addr := "127.0.0.1:" + d.port(t)
	if out := strings.TrimSpace(camctlMust(t, p.A, "crashes", "list", "--store", store, "--addr", addr)); strings.Count(out, "\n") != 0 || !strings.HasSuffix(out, "not sent") {
		t.Fatalf("crash reports: %s", out)
	}

	// The owner turns sinks on, one at a time; each phase's frames may
	// go to what the owner named so far, and nowhere else. The frames
	// are in the order they crossed the link.
	type phase struct {
		from    int              // the first frame of the phase
		allowed []netip.AddrPort // named by the owner up to this phase
	}
	var phases []phase
	turnOn := func(hosts ...string) {
		var allowed []netip.AddrPort
		if len(phases) > 0 {
			allowed = phases[len(phases)-1].allowed
		}
		for _, h := range hosts {
			allowed = append(allowed, netip.MustParseAddrPort(h))
		}
		phases = append(phases, phase{from: len(c.frames()), allowed: allowed})
	}

	// A webhook to an address out there.
	hook := blackhole + ":80"
	turnOn(hook)
	camctlMust(t, p.A, "webhooks", "add", "--store", store, "--addr", addr, "--types", "settings.*", "http://"+hook+"/hook")
	camctlMust(t, p.A, "settings", "set", "--store", store, "--addr", addr, "name=Porch")
	c.waitFor(t, "→ "+hook+" SYN", 30*time.Second)
	// WHIP publish to the owner's SFU (docs/whip.md).
	sfu := "203.0.113.10:8889"
	turnOn(sfu)
	camctlMust(t, p.A, "settings", "set", "--store", store, "--addr", addr, "whip_url=http://"+sfu+"/cam/whip")
	c.waitFor(t, "→ "+sfu+" SYN", 30*time.Second)
	// Web Push: the owner's browser subscribes a push service named by
	// its host (as they are); the doorbell pushes by default, and the
	// capture sees the push service's name looked up.
	turnOn(resolver + ":53")
	d.store = store
	subscribePush(t, p.A, addr, d.token(t), "https://push.example.net/wpush/v2/abc")
	camctlMust(t, p.A, "call", "ring", "--store", store, "--addr", addr)
	c.waitFor(t, "→ "+resolver+":53", 30*time.Second)

	// The configuration names an MQTT broker (on) and a crash
	// collector (crash_reports stays ask): camd connects to the broker
	// at start, and to the collector only when the owner sends the
	// report.
	broker, collector := "203.0.113.8:1883", "203.0.113.9:443"
	conf := filepath.Join(t.TempDir(), "camd.yaml")
	yaml := "mqtt: {enabled: true, broker: \"mqtt://" + broker + "\"}\ncrash_reports_url: \"https://" + collector + "/crash\"\n"
	if err := os.WriteFile(conf, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	d.stop()
	turnOn(broker)
	d = &daemon{t: t, data: d.data}
	d.start(t, netnstest.Command(p.A, filepath.Join(bin, "camd"), runArgs(d.data, "0.0.0.0:0", "--config", conf)...), 30*time.Second)
	addr = "127.0.0.1:" + d.port(t)
	c.waitFor(t, "→ "+broker+" SYN", 30*time.Second)
	crashID := strings.Fields(camctlMust(t, p.A, "crashes", "list", "--store", store, "--addr", addr))[0]
	turnOn(collector)
	// The collector never answers: camctl waits for camd's attempt, and
	// is stopped once the capture saw it.
	send := exec.Command("ip", "netns", "exec", p.A, filepath.Join(bin, "camctl"), "crashes", "send", "--store", store, "--addr", addr, crashID)
	if err := send.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { send.Process.Kill(); send.Wait() })
	c.waitFor(t, "→ "+collector+" SYN", 30*time.Second)

	var lan, named int
	frames := c.frames()
	for i, f := range frames {
		ph := -1
		for j := range phases {
			if i >= phases[j].from {
				ph = j
			}
		}
		switch {
		case f.lan:
			lan++
		case ph < 0:
			t.Errorf("sent without the owner turning anything on: %s", f.desc)
		case slices.Contains(phases[ph].allowed, f.to):
			named++
		default:
			t.Errorf("sent to a host the owner had not named (phase %d): %s", ph, f.desc)
		}
	}
	t.Logf("frames on the link: %d of LAN chatter, %d to the hosts the owner named", lan, named)
}
