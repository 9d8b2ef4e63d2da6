package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/camd-project/camd/discovery"
	"github.com/camd-project/camd/discovery/netnstest"
	"github.com/camd-project/camd/discovery/wsd"
)

// startInNetns runs camd inside namespace ns, listening on every address,
// and waits until it serves. Unlike startDaemon it does not pair.
func startInNetns(t testing.TB, ns string, args ...string) *daemon {
	t.Helper()
	d := &daemon{t: t, data: t.TempDir()}
	d.start(t, netnstest.Command(ns, filepath.Join(bin, "camd"), runArgs(d.data, "0.0.0.0:0", args...)...), 30*time.Second)
	return d
}

// port is the port camd serves on.
func (d *daemon) port(t testing.TB) string {
	_, p, err := net.SplitHostPort(d.addr)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// deviceID reads the device ID camd created.
func (d *daemon) deviceID(t testing.TB) string {
	b, err := os.ReadFile(filepath.Join(d.data, "device-id"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// watcher is `camctl discover --watch --json` running in a namespace.
type watcher struct {
	cmd    *exec.Cmd
	events chan watchEvent
}

type watchEvent struct {
	Event   string           `json:"event"`
	AfterMs float64          `json:"after_ms"`
	Camera  discovery.Camera `json:"camera"`
}

func watchIn(t testing.TB, ns string, args ...string) *watcher {
	t.Helper()
	all := append([]string{"discover", "--watch", "--json", "--timeout", "2m"}, args...)
	w := &watcher{cmd: netnstest.Command(ns, filepath.Join(bin, "camctl"), all...), events: make(chan watchEvent, 64)}
	out, err := w.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	w.cmd.Stderr = os.Stderr
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var e watchEvent
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				t.Errorf("camctl discover --watch printed %q: %v", sc.Text(), err)
				continue
			}
			w.events <- e
		}
		close(w.events)
	}()
	t.Cleanup(func() {
		w.cmd.Process.Kill()
		w.cmd.Wait()
	})
	return w
}

// next waits for an event that satisfies ok.
func (w *watcher) next(t testing.TB, d time.Duration, ok func(watchEvent) bool) watchEvent {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case e, open := <-w.events:
			if !open {
				t.Fatal("camctl discover --watch ended")
			}
			if ok(e) {
				return e
			}
		case <-deadline:
			t.Fatalf("no matching discovery event within %v", d)
		}
	}
}

// avahiBrowse starts avahi-daemon (with a D-Bus system bus of its own, in
// a private mount namespace, so that nothing of the host's is touched)
// inside ns and returns the resolved lines `avahi-browse -rp` prints.
func avahiBrowse(t testing.TB, ns, service string) <-chan string {
	t.Helper()
	script := `set -e
mkdir -p /run/dbus /run/avahi-daemon
mount -t tmpfs tmpfs /run/dbus
mount -t tmpfs tmpfs /run/avahi-daemon
dbus-daemon --system --nofork --nopidfile & DBUS=$!
trap 'kill $BROWSE $AVAHI $DBUS 2>/dev/null; wait' EXIT INT TERM
for i in $(seq 100); do [ -S /run/dbus/system_bus_socket ] && break; sleep 0.05; done
avahi-daemon --no-drop-root --no-chroot --no-rlimits & AVAHI=$!
for i in $(seq 100); do avahi-daemon --check 2>/dev/null && break; sleep 0.05; done
avahi-browse -rp ` + service + ` & BROWSE=$!
wait $BROWSE
`
	cmd := exec.Command("ip", "netns", "exec", ns, "unshare", "--mount", "--propagation", "private", "sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var errb strings.Builder
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Error("avahi-browse's shell did not exit after SIGKILL")
			}
		}
		if t.Failed() {
			t.Logf("avahi stderr:\n%s", errb.String())
		}
	})
	return lines
}

// udpIn opens a UDP socket in namespace ns.
func udpIn(t testing.TB, ns, addr string) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	err := netnstest.Do(ns, func() error {
		var err error
		c, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// onvifSpecProbe is the Probe of the ONVIF Core Specification's
// discovery example (section 7.3, "Probe"), with its mustUnderstand
// attributes' prefixes corrected to the envelope's.
const onvifSpecProbe = `<?xml version="1.0" encoding="UTF-8"?>
<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"
xmlns:w="http://schemas.xmlsoap.org/ws/2004/08/addressing"
xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery"
xmlns:dn="http://www.onvif.org/ver10/network/wsdl">
<e:Header>
<w:MessageID>uuid:84ede3de-7dec-11d0-c360-f01234567890</w:MessageID>
<w:To e:mustUnderstand="true">urn:schemas-xmlsoap-org:ws:2005:04:discovery</w:To>
<w:Action e:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe</w:Action>
</e:Header>
<e:Body>
<d:Probe>
<d:Types>dn:NetworkVideoTransmitter</d:Types>
</d:Probe>
</e:Body>
</e:Envelope>`

// probeByHand sends a hand-written probe from namespace ns and returns the
// datagrams that answer within d.
func probeByHand(t testing.TB, ns, probe string, d time.Duration) [][]byte {
	t.Helper()
	c := udpIn(t, ns, "0.0.0.0:0")
	if _, err := c.WriteToUDP([]byte(probe), &net.UDPAddr{IP: net.IPv4(239, 255, 255, 250), Port: 3702}); err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 65536)
	for {
		n, _, err := c.ReadFromUDP(buf)
		if err != nil {
			return out
		}
		out = append(out, append([]byte(nil), buf[:n]...))
	}
}

var macLine = regexp.MustCompile(`link/ether ([0-9a-f:]{17})`)

// hardwareIDs are the strings nothing announced may contain: the MAC of
// the camera's interface (as printed and without colons) and the host name.
func hardwareIDs(t testing.TB, ns string) []string {
	out, err := exec.Command("ip", "-n", ns, "link", "show", "eth0").CombinedOutput()
	if err != nil {
		t.Fatalf("ip link: %v\n%s", err, out)
	}
	m := macLine.FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("no MAC in %s", out)
	}
	host, _ := os.Hostname()
	return []string{strings.ToLower(m[1]), strings.ReplaceAll(strings.ToLower(m[1]), ":", ""), strings.ToLower(host)}
}

func leaks(s string, ids []string) string {
	s = strings.ToLower(s)
	for _, id := range ids {
		if id != "" && strings.Contains(s, id) {
			return id
		}
	}
	return ""
}

// TestDiscoveryAcrossNamespaces runs camd in one network namespace and
// every browser in another, over real multicast on a veth link: camctl
// discover (mDNS, live updates), avahi-browse (Avahi, not our code), the
// ONVIF spec's own Probe sent by hand, and camctl discover --onvif. The
// paired flag changes after camctl pairs; a stopped camera says goodbye
// and Bye; nothing announced carries the MAC or the host name.
func TestDiscoveryAcrossNamespaces(t *testing.T) {
	need(t, "avahi-daemon", "avahi-browse", "dbus-daemon", "unshare")
	netnstest.Need(t)
	p := netnstest.NewPair(t)
	banned := hardwareIDs(t, p.A)

	w := watchIn(t, p.B)
	d := startInNetns(t, p.A, "--config", writeConfig(t, "name: Front Door\n"))
	waitLog(t, d, "discovery: announcing _camd._tcp")
	waitLog(t, d, "discovery: answering WS-Discovery probes")
	id, port := d.deviceID(t), d.port(t)

	// camctl discover --watch sees the camera, unpaired, with its TXT.
	e := w.next(t, 10*time.Second, func(e watchEvent) bool { return e.Event == "found" })
	c := e.Camera
	t.Logf("found after %.1f ms: %+v", e.AfterMs, c)
	if c.Name != "Front Door" || c.ID != id || c.Paired || c.Added || c.Discriminator == 0 || fmt.Sprint(c.Port) != port {
		t.Errorf("camera = %+v; want Front Door, id %s, unpaired with a discriminator, port %s", c, id, port)
	}
	if c.Addr() != p.AddrA+":"+port {
		t.Errorf("address %s, want %s:%s", c.Addr(), p.AddrA, port)
	}
	if leak := leaks(strings.Join(c.TXT, " ")+" "+c.Host, banned); leak != "" {
		t.Errorf("TXT or host name carries %q: %v %s", leak, c.TXT, c.Host)
	}

	// Avahi, in the browsing namespace, resolves the same service.
	lines := avahiBrowse(t, p.B, "_camd._tcp")
	deadline := time.After(20 * time.Second)
	var resolved string
	for resolved == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("avahi-browse ended without resolving the camera")
			}
			if strings.HasPrefix(l, "=;") && strings.Contains(l, "IPv4") {
				resolved = l
			}
		case <-deadline:
			t.Fatal("avahi-browse did not resolve the camera within 20 s")
		}
	}
	t.Logf("avahi-browse: %s", resolved)
	// =;eth0;IPv4;Front\032Door;_camd._tcp;local;camd-xxxx.local;10.x.y.1;PORT;"txt" "txt"
	f := strings.SplitN(resolved, ";", 10)
	if len(f) < 10 || f[3] != `Front\032Door` || f[7] != p.AddrA || f[8] != port ||
		!strings.Contains(f[9], `"id=`+id+`"`) || !strings.Contains(f[9], `"paired=0"`) {
		t.Errorf("avahi resolved %q; want Front Door at %s:%s with id=%s paired=0", resolved, p.AddrA, port, id)
	}
	if leak := leaks(resolved, banned); leak != "" {
		t.Errorf("avahi saw %q in %s", leak, resolved)
	}

	// The ONVIF spec's example Probe, by hand: one ProbeMatch, with camd's
	// address, and nothing of the hardware.
	answers := probeByHand(t, p.B, onvifSpecProbe, time.Second)
	if len(answers) != 1 {
		t.Fatalf("%d answers to the spec's Probe, want 1", len(answers))
	}
	m, err := wsd.Parse(answers[0])
	if err != nil || m.Action != wsd.ActionProbeMatches || m.RelatesTo != "uuid:84ede3de-7dec-11d0-c360-f01234567890" || len(m.Matches) != 1 {
		t.Fatalf("answer %s: %+v %v", answers[0], m, err)
	}
	if x := m.Matches[0].XAddrs; len(x) == 0 || x[0] != "https://"+p.AddrA+":"+port+"/" {
		t.Errorf("XAddrs %v, want https://%s:%s/", x, p.AddrA, port)
	}
	if leak := leaks(string(answers[0]), banned); leak != "" {
		t.Errorf("ProbeMatch carries %q:\n%s", leak, answers[0])
	}
	if len(answers[0]) > 2*len(onvifSpecProbe) {
		t.Errorf("ProbeMatch of %d bytes answers a %d-byte probe", len(answers[0]), len(onvifSpecProbe))
	}
	// A probe for printers gets nothing.
	printer := strings.NewReplacer("dn:NetworkVideoTransmitter", "p:PrintDeviceType",
		`xmlns:dn="http://www.onvif.org/ver10/network/wsdl"`, `xmlns:p="http://schemas.microsoft.com/windows/2006/08/wdp/print"`,
		"84ede3de", "94ede3de").Replace(onvifSpecProbe)
	if a := probeByHand(t, p.B, printer, 500*time.Millisecond); len(a) != 0 {
		t.Errorf("a probe for printers was answered: %s", a[0])
	}

	// camctl discover --onvif lists both views of the camera.
	res := discoverJSON(t, p.B, "--onvif", "--timeout", "1s")
	if len(res.Cameras) != 1 || res.Cameras[0].ID != id || len(res.ONVIF) != 1 || res.ONVIF[0].Name != "Front Door" {
		t.Errorf("camctl discover --onvif: %+v", res)
	}

	// Pairing flips the paired flag, live.
	qr, err := exec.Command(filepath.Join(bin, "camd"), "qr", "--data", d.data).CombinedOutput()
	if err != nil {
		t.Fatalf("camd qr: %v\n%s", err, qr)
	}
	ql := strings.Split(strings.TrimSpace(string(qr)), "\n")
	store := filepath.Join(t.TempDir(), "credentials.json")
	if out, err := netnstest.Command(p.B, filepath.Join(bin, "camctl"), "pair", "--store", store, "--addr", p.AddrA+":"+port, "--name", "e2e", ql[len(ql)-1]).CombinedOutput(); err != nil {
		t.Fatalf("camctl pair: %v\n%s", err, out)
	}
	e = w.next(t, 10*time.Second, func(e watchEvent) bool { return e.Event == "found" && e.Camera.Paired })
	if e.Camera.Discriminator != 0 {
		t.Errorf("a paired camera still announces discriminator %d", e.Camera.Discriminator)
	}
	res = discoverJSON(t, p.B, "--store", store)
	if len(res.Cameras) != 1 || !res.Cameras[0].Added || !res.Cameras[0].Paired {
		t.Errorf("after pairing, camctl discover --store: %+v", res.Cameras)
	}

	// The owner renames the camera: it is announced under the new name.
	if out, err := netnstest.Command(p.B, filepath.Join(bin, "camctl"), "settings", "set", "--store", store, "name=Back porch").CombinedOutput(); err != nil {
		t.Fatalf("camctl settings set name: %v\n%s", err, out)
	}
	w.next(t, 10*time.Second, func(e watchEvent) bool {
		return e.Event == "found" && e.Camera.Name == "Back porch" && e.Camera.ID == id
	})

	// Stopping says goodbye (mDNS) and Bye (WS-Discovery).
	bye := byeListener(t, p.B)
	d.stop()
	w.next(t, 5*time.Second, func(e watchEvent) bool { return e.Event == "gone" && e.Camera.ID == id })
	select {
	case b := <-bye:
		if m, err := wsd.Parse(b); err != nil || m.Action != wsd.ActionBye {
			t.Errorf("after stop, WS-Discovery sent %s (%v)", b, err)
		}
	case <-time.After(5 * time.Second):
		t.Error("no WS-Discovery Bye within 5 s of stopping")
	}
}

type discoverResult struct {
	Cameras []discovery.Camera `json:"cameras"`
	ONVIF   []struct {
		wsd.Found
		Name string `json:"name"`
	} `json:"onvif"`
}

// discoverJSON runs camctl discover --json in namespace ns.
func discoverJSON(t testing.TB, ns string, args ...string) discoverResult {
	t.Helper()
	all := append([]string{"discover", "--json"}, args...)
	out, err := netnstest.Command(ns, filepath.Join(bin, "camctl"), all...).Output()
	if err != nil {
		t.Fatalf("camctl %s: %v", strings.Join(all, " "), err)
	}
	var r discoverResult
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("camctl discover --json printed %s: %v", out, err)
	}
	return r
}

// byeListener joins the WS-Discovery group on eth0 in ns and passes on
// the first Bye it hears.
func byeListener(t testing.TB, ns string) <-chan []byte {
	t.Helper()
	c := udpIn(t, ns, "239.255.255.250:3702")
	var ifi *net.Interface
	err := netnstest.Do(ns, func() error {
		var err error
		ifi, err = net.InterfaceByName("eth0")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := ipv4.NewPacketConn(c).JoinGroup(ifi, &net.UDPAddr{IP: net.IPv4(239, 255, 255, 250)}); err != nil {
		t.Fatal(err)
	}
	out := make(chan []byte, 1)
	go func() {
		buf := make([]byte, 65536)
		for {
			n, _, err := c.ReadFromUDP(buf)
			if err != nil {
				return
			}
			if m, err := wsd.Parse(buf[:n]); err == nil && m.Action == wsd.ActionBye {
				out <- append([]byte(nil), buf[:n]...)
				return
			}
		}
	}()
	return out
}

// udpPorts lists the local UDP ports of the sockets process pid holds.
func udpPorts(t testing.TB, pid int) map[int]bool {
	t.Helper()
	inodes := map[string]bool{}
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	for _, fd := range fds {
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if s, ok := strings.CutPrefix(l, "socket:["); ok && err == nil {
			inodes[strings.TrimSuffix(s, "]")] = true
		}
	}
	ports := map[int]bool{}
	for _, table := range []string{"udp", "udp6"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, table))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 || !inodes[f[9]] {
				continue
			}
			var port int
			_, hexPort, _ := strings.Cut(f[1], ":")
			fmt.Sscanf(hexPort, "%X", &port)
			ports[port] = true
		}
	}
	return ports
}

// TestLoopbackAnnouncesNothing: camd on loopback, as `make run` starts
// it, says in its log that it does not announce, and opens no mDNS or
// WS-Discovery socket.
func TestLoopbackAnnouncesNothing(t *testing.T) {
	d := startDaemon(t)
	waitLog(t, d, `msg="discovery: not announcing (no mDNS, no WS-Discovery)" reason="camd listens on loopback (127.0.0.1)"`)
	ports := udpPorts(t, d.cmd.Process.Pid)
	if len(ports) == 0 {
		t.Fatal("found none of camd's UDP sockets (its WebRTC port at least)")
	}
	if ports[5353] || ports[3702] {
		t.Fatalf("camd on loopback holds UDP ports %v", ports)
	}
}
