package discovery

import (
	"context"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/camd-project/camd/discovery/netnstest"
)

// events gathers what a browse reports.
type events struct {
	mu   sync.Mutex
	list []event
	ch   chan struct{}
}

type event struct {
	c    Camera
	gone bool
	at   time.Time
}

func newEvents() *events { return &events{ch: make(chan struct{}, 1)} }

func (e *events) changed(c Camera, gone bool) {
	e.mu.Lock()
	e.list = append(e.list, event{c, gone, time.Now()})
	e.mu.Unlock()
	select {
	case e.ch <- struct{}{}:
	default:
	}
}

// wait returns the first event since index from that satisfies ok.
func (e *events) wait(t *testing.T, from int, d time.Duration, ok func(event) bool) (event, int) {
	t.Helper()
	deadline := time.After(d)
	for {
		e.mu.Lock()
		for i := from; i < len(e.list); i++ {
			if ok(e.list[i]) {
				ev := e.list[i]
				e.mu.Unlock()
				return ev, i + 1
			}
		}
		e.mu.Unlock()
		select {
		case <-e.ch:
		case <-deadline:
			e.mu.Lock()
			defer e.mu.Unlock()
			t.Fatalf("no such event within %v; events: %+v", d, e.list)
		}
	}
}

// browseIn browses from namespace ns until ctx ends.
func browseIn(t *testing.T, ctx context.Context, ns string, ev *events) <-chan []Camera {
	out := make(chan []Camera, 1)
	go func() {
		var cams []Camera
		err := netnstest.Do(ns, func() error {
			var err error
			cams, err = Browse(ctx, BrowseOptions{Changed: ev.changed, Added: func(id string) bool { return id == "ADDEDADDEDADDED1" }})
			return err
		})
		if err != nil {
			t.Errorf("browse: %v", err)
		}
		out <- cams
	}()
	return out
}

// browsingFromB starts a browse in namespace B for the rest of the test.
func browsingFromB(t *testing.T, p *netnstest.Pair) *events {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	ev := newEvents()
	done := browseIn(t, ctx, p.B, ev)
	t.Cleanup(func() { cancel(); <-done })
	return ev
}

// listedFrom browses from namespace ns until a camera that ok accepts is
// listed (camd announces once it has probed for its name), for at most
// 10 s, and returns the cameras listed then.
func listedFrom(t *testing.T, ns string, ok func(Camera) bool) []Camera {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var cams []Camera
	err := netnstest.Do(ns, func() (err error) {
		cams, err = Browse(ctx, BrowseOptions{Changed: func(c Camera, gone bool) {
			if !gone && ok(c) {
				cancel()
			}
		}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(cams, ok) {
		t.Fatalf("the camera was not listed within 10 s; listed: %+v", cams)
	}
	return cams
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// TestAnnounceBrowseAcrossNamespaces announces from namespace A and
// browses from B over the veth link: the camera appears with its TXT, the
// paired flag changes on Refresh, a new name replaces the old one, and the
// camera disappears on Close.
func TestAnnounceBrowseAcrossNamespaces(t *testing.T) {
	p, child := netnstest.InA(t)
	if !child {
		return
	}
	var paired atomic.Bool
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ev := newEvents()
	done := browseIn(t, ctx, p.B, ev)

	a, err := Start(Options{
		Name: "Front Door", Port: 8443, ID: "ABCDEFGHIJKLMNOP", Model: "sim", Firmware: "1.2.3",
		Status:     func() (bool, uint16) { return paired.Load(), 1234 },
		ListenHost: "0.0.0.0", ONVIF: true, Logger: testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if got := a.Interfaces(); !slices.Equal(got, []string{"eth0"}) {
		t.Fatalf("announcing on %v, want [eth0] (lo is not multicast)", got)
	}

	first, next := ev.wait(t, 0, 5*time.Second, func(e event) bool { return !e.gone })
	c := first.c
	if c.Name != "Front Door" || c.ID != "ABCDEFGHIJKLMNOP" || c.Model != "sim" || c.Firmware != "1.2.3" ||
		c.Paired || c.Discriminator != 1234 || c.Port != 8443 || c.Version != 1 || c.API != 1 {
		t.Fatalf("camera = %+v", c)
	}
	if c.Host != "camd-abcdefgh.local." {
		t.Errorf("host = %q, want one derived from the device ID", c.Host)
	}
	found := false
	for _, a := range c.Addrs {
		if a.String() == p.AddrA {
			found = true
		}
	}
	if !found || c.Interface != "eth0" {
		t.Errorf("addrs %v on %q, want %s on eth0", c.Addrs, c.Interface, p.AddrA)
	}

	paired.Store(true)
	a.Refresh()
	e, next := ev.wait(t, next, 5*time.Second, func(e event) bool { return !e.gone && e.c.Paired })
	if e.c.Discriminator != 0 {
		t.Errorf("a paired camera announces discriminator %d", e.c.Discriminator)
	}

	a.SetName("Back Door")
	_, next = ev.wait(t, next, 5*time.Second, func(e event) bool { return !e.gone && e.c.Name == "Back Door" })

	// What the browser received was counted, and the count outlives the
	// responders.
	sent := a.Answers()
	if sent == 0 {
		t.Errorf("Answers() = 0 after the browser found the camera")
	}
	a.Close()
	if after := a.Answers(); after < sent {
		t.Errorf("Answers() went from %d to %d at Close", sent, after)
	}
	ev.wait(t, next, 5*time.Second, func(e event) bool { return e.gone && e.c.Name == "Back Door" })
	// The IPv4 and IPv6 copies of each packet reach the browser through
	// two sockets, in either order: let the last goodbye copy land.
	time.Sleep(500 * time.Millisecond)
	cancel()
	if cams := <-done; len(cams) != 0 {
		t.Errorf("after Close, browse ends with %+v", cams)
	}
}

// TestTwoCamerasWithOneNameAcrossNamespaces: cameras in A and B given the
// same friendly name both stay findable: the one that starts second
// probes for the name, the first defends it, and the second renames
// itself "Front Door (2)" (RFC 6762 §8.1) though its host name sorts
// after the first's (the tie-break of two announced names would keep it
// the name); a browse in B ends up with both.
func TestTwoCamerasWithOneNameAcrossNamespaces(t *testing.T) {
	p, child := netnstest.InA(t)
	if !child {
		return
	}
	ev := browsingFromB(t, p)
	a, err := Start(Options{Name: "Front Door", Port: 8443, ID: "ABCDEFGHIJKLMNOP", ListenHost: "0.0.0.0", Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ev.wait(t, 0, 5*time.Second, func(e event) bool { return !e.gone && e.c.ID == "ABCDEFGHIJKLMNOP" })

	// The second camera lives in B: its sockets, and the interfaces it
	// watches, are B's.
	inB := func() ([]net.Interface, func(*net.Interface) ([]net.Addr, error), error) {
		var all []net.Interface
		addrs := map[int][]net.Addr{}
		err := netnstest.Do(p.B, func() error {
			var err error
			if all, err = net.Interfaces(); err != nil {
				return err
			}
			for _, i := range all {
				addrs[i.Index], _ = i.Addrs()
			}
			return nil
		})
		return all, func(i *net.Interface) ([]net.Addr, error) { return addrs[i.Index], nil }, err
	}
	var b *Announcer
	if err := netnstest.Do(p.B, func() error {
		var err error
		b, err = Start(Options{Name: "Front Door", Port: 8443, ID: "ZYXWVUTSRQPONMLK", ListenHost: "0.0.0.0",
			Logger: testLogger(t), interfaces: inB})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	ev.wait(t, 0, 10*time.Second, func(e event) bool {
		return !e.gone && e.c.ID == "ZYXWVUTSRQPONMLK" && e.c.Name == "Front Door (2)"
	})
	// The first camera keeps "Front Door" and stays listed under it; the
	// second never announced it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		cams := map[string]string{}
		ev.mu.Lock()
		for _, e := range ev.list {
			if e.gone {
				delete(cams, e.c.Name)
			} else {
				cams[e.c.Name] = e.c.ID
			}
		}
		ev.mu.Unlock()
		if cams["Front Door"] == "ABCDEFGHIJKLMNOP" && cams["Front Door (2)"] == "ZYXWVUTSRQPONMLK" && len(cams) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("browse lists %v, want Front Door (A) and Front Door (2) (B)", cams)
		}
		time.Sleep(100 * time.Millisecond)
	}
	ev.mu.Lock()
	defer ev.mu.Unlock()
	for _, e := range ev.list {
		if e.c.ID == "ABCDEFGHIJKLMNOP" && e.c.Name != "Front Door" {
			t.Errorf("the camera that held the name was renamed %q", e.c.Name)
		}
		if e.c.ID == "ZYXWVUTSRQPONMLK" && e.c.Name != "Front Door (2)" {
			t.Errorf("the camera that came second announced %q", e.c.Name)
		}
	}
}
