// Package netnstest gives tests a small LAN of their own: two network
// namespaces, A and B, joined by a veth pair (eth0 in each), with IPv4 and
// IPv6 addresses and the routes multicast needs. Nothing runs on the
// host's own interfaces. It needs root and iproute2; Need skips a test
// without them, or fails it when CAMD_REQUIRE_TOOLS is set.
package netnstest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/camd-project/camd/internal/testenv"
)

// Need skips t (or fails it when CAMD_REQUIRE_TOOLS is set, see
// internal/testenv) unless the test runs as root with the given tools and
// ip(8).
func Need(t testing.TB, tools ...string) {
	t.Helper()
	testenv.Root(t, "network namespace tests")
	testenv.Tools(t, append([]string{"ip"}, tools...)...)
}

// Pair is two namespaces joined by a veth pair.
type Pair struct {
	// A and B are the namespaces' names (under /run/netns).
	A, B string
	// AddrA, AddrB are the IPv4 addresses of eth0 in A and in B; AddrA6,
	// AddrB6 the IPv6 ones (ULA, no duplicate address detection).
	AddrA, AddrB, AddrA6, AddrB6 string
}

var seq atomic.Uint32

// NewPair creates a pair with names unique to this process and deletes it
// in t.Cleanup, whether the test passed or not.
func NewPair(t testing.TB) *Pair {
	t.Helper()
	Need(t)
	n := seq.Add(1)
	subnet := (os.Getpid()*7 + int(n)) % 250
	p := &Pair{
		A:      fmt.Sprintf("camdt-%d-%d-a", os.Getpid(), n),
		B:      fmt.Sprintf("camdt-%d-%d-b", os.Getpid(), n),
		AddrA:  fmt.Sprintf("10.231.%d.1", subnet),
		AddrB:  fmt.Sprintf("10.231.%d.2", subnet),
		AddrA6: fmt.Sprintf("fd00:ca3d:%x::1", subnet),
		AddrB6: fmt.Sprintf("fd00:ca3d:%x::2", subnet),
	}
	t.Cleanup(func() {
		for _, ns := range []string{p.A, p.B} {
			exec.Command("ip", "netns", "delete", ns).Run()
		}
	})
	steps := [][]string{
		{"netns", "add", p.A},
		{"netns", "add", p.B},
	}
	for _, ns := range []string{p.A, p.B} {
		steps = append(steps,
			[]string{"netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"},
			[]string{"-n", ns, "link", "set", "lo", "up"})
	}
	steps = append(steps,
		[]string{"-n", p.A, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", p.B},
		[]string{"-n", p.A, "addr", "add", p.AddrA + "/24", "dev", "eth0"},
		[]string{"-n", p.B, "addr", "add", p.AddrB + "/24", "dev", "eth0"},
		[]string{"-n", p.A, "addr", "add", p.AddrA6 + "/64", "dev", "eth0", "nodad"},
		[]string{"-n", p.B, "addr", "add", p.AddrB6 + "/64", "dev", "eth0", "nodad"},
		[]string{"-n", p.A, "link", "set", "eth0", "up"},
		[]string{"-n", p.B, "link", "set", "eth0", "up"},
		// Multicast in a fresh namespace needs a route, or joining a
		// group fails with "no such device".
		[]string{"-n", p.A, "route", "add", "default", "dev", "eth0"},
		[]string{"-n", p.B, "route", "add", "default", "dev", "eth0"},
	)
	for _, s := range steps {
		if out, err := exec.Command("ip", s...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(s, " "), err, out)
		}
	}
	return p
}

// Command runs name with args inside namespace ns.
func Command(ns, name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", ns, name}, args...)...)
}

// Do runs f on an OS thread that has entered namespace ns: sockets f
// opens, and interfaces it lists, are ns's. Goroutines f starts run
// elsewhere, but the sockets they use stay in ns. The thread is thrown
// away afterwards.
func Do(ns string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with this goroutine
		fd, err := unix.Open("/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("netnstest: %w", err)
			return
		}
		err = unix.Setns(fd, unix.CLONE_NEWNET)
		unix.Close(fd)
		if err != nil {
			errc <- fmt.Errorf("netnstest: setns %s: %w", ns, err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

// childEnv marks a test process re-run inside namespace A.
const childEnv = "CAMD_NETNS_CHILD"

// InA runs the calling test again in a process inside namespace A of a
// new pair, and reports its result. It returns the pair and true in that
// process (where the test does its work) and nil, false in the parent
// (which has nothing left to do).
func InA(t *testing.T) (*Pair, bool) {
	t.Helper()
	if env := os.Getenv(childEnv); env != "" {
		var p Pair
		fmt.Sscan(strings.ReplaceAll(env, ",", " "), &p.A, &p.B, &p.AddrA, &p.AddrB, &p.AddrA6, &p.AddrB6)
		return &p, true
	}
	p := NewPair(t)
	args := []string{"-test.run", "^" + t.Name() + "$", "-test.v", "-test.count=1"}
	cmd := Command(p.A, os.Args[0], args...)
	cmd.Env = append(os.Environ(), childEnv+"="+strings.Join([]string{p.A, p.B, p.AddrA, p.AddrB, p.AddrA6, p.AddrB6}, ","))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if testing.Verbose() || err != nil {
		t.Logf("in namespace %s:\n%s", p.A, out.String())
	}
	if err != nil {
		t.Fatalf("test in namespace %s failed: %v", p.A, err)
	}
	if strings.Contains(out.String(), "--- SKIP") {
		t.Skip("skipped in the namespace")
	}
	return nil, false
}
