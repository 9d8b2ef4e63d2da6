package discovery

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/camd-project/camd/discovery/netnstest"
)

func ip(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// waitInterfaces waits until the announcer announces on want.
func waitInterfaces(t *testing.T, a *Announcer, want []string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !slices.Equal(a.Interfaces(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("announcing on %v, want %v", a.Interfaces(), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAnnouncerFollowsInterfaceChanges changes the camera's address, then
// takes its interface down and up: the announcement follows each time.
func TestAnnouncerFollowsInterfaceChanges(t *testing.T) {
	p, child := netnstest.InA(t)
	if !child {
		return
	}
	ev := browsingFromB(t, p)
	a, err := Start(Options{Name: "Cam", Port: 8443, ID: "ABCDEFGHIJKLMNOP", ListenHost: "::", ONVIF: true,
		WatchInterval: 100 * time.Millisecond, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	has := func(e event, addr string) bool {
		for _, x := range e.c.Addrs {
			if x.String() == addr {
				return true
			}
		}
		return false
	}
	_, next := ev.wait(t, 0, 5*time.Second, func(e event) bool { return !e.gone && has(e, p.AddrA) })

	// a new address replaces the old one
	moved := strings.TrimSuffix(p.AddrA, ".1") + ".9"
	// keep the new address when the old (primary) one is deleted
	if out, err := exec.Command("sysctl", "-qw", "net.ipv4.conf.eth0.promote_secondaries=1").CombinedOutput(); err != nil {
		t.Fatalf("sysctl: %v\n%s", err, out)
	}
	ip(t, "addr", "add", moved+"/24", "dev", "eth0")
	ip(t, "addr", "del", p.AddrA+"/24", "dev", "eth0")
	_, next = ev.wait(t, next, 5*time.Second, func(e event) bool { return !e.gone && has(e, moved) && !has(e, p.AddrA) })

	// down: nothing to announce on; up again: announced again
	ip(t, "link", "set", "eth0", "down")
	waitInterfaces(t, a, nil)
	ip(t, "link", "set", "eth0", "up")
	ip(t, "route", "replace", "default", "dev", "eth0")
	waitInterfaces(t, a, []string{"eth0"})
	_ = next
	// The name is probed for on the link come back, then announced.
	cams := listedFrom(t, p.B, func(c Camera) bool { return c.Addr() == moved+":8443" })
	if len(cams) != 1 || cams[0].Addr() != moved+":8443" {
		t.Fatalf("after the interface came back, browse found %+v", cams)
	}
}
