package discovery

import (
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"
)

const eth0 = 2

func testBrowser(changed func(Camera, bool)) *browser {
	return newBrowser(BrowseOptions{Changed: changed, Added: func(id string) bool { return id == "ADDED" }},
		[]net.Interface{{Index: eth0, Name: "eth0"}})
}

// announcement is what zeroconf sends for one camera.
func announcement(instance, host string, ttl uint32, txt ...string) []byte {
	m := new(dns.Msg)
	m.Response = true
	full := instance + "." + serviceName
	hdr := func(name string, t uint16, ttl uint32) dns.RR_Header {
		return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: ttl}
	}
	m.Answer = []dns.RR{
		&dns.PTR{Hdr: hdr(serviceName, dns.TypePTR, ttl), Ptr: full},
		&dns.SRV{Hdr: hdr(full, dns.TypeSRV, ttl), Port: 8443, Target: host},
		&dns.TXT{Hdr: hdr(full, dns.TypeTXT, ttl), Txt: txt},
	}
	m.Extra = []dns.RR{
		&dns.A{Hdr: hdr(host, dns.TypeA, min(ttl, 120)), A: net.IPv4(10, 0, 0, 7)},
		&dns.AAAA{Hdr: hdr(host, dns.TypeAAAA, min(ttl, 120)), AAAA: net.ParseIP("fe80::7")},
	}
	b, err := m.Pack()
	if err != nil {
		panic(err)
	}
	return b
}

func TestBrowserFollowsAnnouncementsAndGoodbyes(t *testing.T) {
	type ev struct {
		c    Camera
		gone bool
	}
	var evs []ev
	b := testBrowser(func(c Camera, gone bool) { evs = append(evs, ev{c, gone}) })
	now := time.Now()
	b.handle(announcement(`Front\ Door`, "camd-abcd.local.", 3200, "id=ADDED", "paired=0", "disc=12"), eth0, now)
	if len(evs) != 1 || evs[0].gone {
		t.Fatalf("events %+v", evs)
	}
	c := evs[0].c
	if c.Name != "Front Door" || c.ID != "ADDED" || !c.Added || c.Paired || c.Discriminator != 12 ||
		c.Addr() != "10.0.0.7:8443" || c.Addrs[1].String() != "fe80::7%eth0" || c.Interface != "eth0" {
		t.Fatalf("camera %+v", c)
	}
	// the same again: no event
	b.handle(announcement(`Front\ Door`, "camd-abcd.local.", 3200, "id=ADDED", "paired=0", "disc=12"), eth0, now)
	// a new TXT: changed
	b.handle(announcement(`Front\ Door`, "camd-abcd.local.", 3200, "id=ADDED", "paired=1"), eth0, now)
	if len(evs) != 2 || !evs[1].c.Paired {
		t.Fatalf("events %+v", evs)
	}
	// on another interface: ignored
	b.handle(announcement("Other", "camd-eeee.local.", 3200, "id=OTHER"), 9, now)
	// goodbye
	b.handle(announcement(`Front\ Door`, "camd-abcd.local.", 0, "id=ADDED", "paired=1"), eth0, now)
	if len(evs) != 3 || !evs[2].gone || len(b.cameras()) != 0 {
		t.Fatalf("events %+v, cameras %+v", evs, b.cameras())
	}
}

func TestBrowserExpires(t *testing.T) {
	gone := 0
	b := testBrowser(func(c Camera, g bool) {
		if g {
			gone++
		}
	})
	now := time.Now()
	b.handle(announcement("Cam", "camd-abcd.local.", 10, "id=X"), eth0, now)
	if len(b.cameras()) != 1 {
		t.Fatal("not listed")
	}
	b.reconcile(now.Add(11 * time.Second))
	if gone != 1 || len(b.cameras()) != 0 || len(b.instances) != 0 || len(b.hosts) != 0 {
		t.Fatalf("gone %d, cameras %v, cache %d/%d", gone, b.cameras(), len(b.instances), len(b.hosts))
	}
}

func TestBrowserWaitsForEveryRecord(t *testing.T) {
	b := testBrowser(nil)
	now := time.Now()
	m := new(dns.Msg)
	m.Unpack(announcement("Cam", "camd-abcd.local.", 100, "id=X"))
	m.Extra = nil // no address
	pkt, _ := m.Pack()
	b.handle(pkt, eth0, now)
	if len(b.cameras()) != 0 {
		t.Fatal("listed without an address")
	}
	if q := b.missing(now); q == nil || q.Question[0].Name != serviceName {
		t.Fatalf("no question for what is missing: %v", q)
	}
	if q := b.missing(now.Add(100 * time.Millisecond)); q != nil {
		t.Fatal("asked twice within a second")
	}
	// no txt id: never listed
	b.handle(announcement("NoID", "camd-ffff.local.", 100, "model=x"), eth0, now)
	for _, c := range b.cameras() {
		if c.Name == "NoID" {
			t.Fatal("a record without id was listed")
		}
	}
}

// TestBrowserSurvivesMalformedPackets feeds packets no responder should
// send: each is ignored, and the browser still works.
func TestBrowserSurvivesMalformedPackets(t *testing.T) {
	b := testBrowser(nil)
	now := time.Now()
	good := announcement("Cam", "camd-abcd.local.", 100, "id=X")
	bad := map[string][]byte{
		"empty":     {},
		"header":    good[:11],
		"truncated": good[:len(good)/2],
		"junk":      []byte("GET / HTTP/1.1\r\n\r\n"),
		// a compression pointer to itself
		"pointer loop": {0, 0, 0x84, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1},
		// a count of 65535 answers with none there
		"counts": {0, 0, 0x84, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0},
		// a label longer than 63 bytes
		"label": append([]byte{0, 0, 0x84, 0, 0, 1, 0, 0, 0, 0, 0, 0, 64}, make([]byte, 70)...),
	}
	for name, pkt := range bad {
		t.Run(name, func(t *testing.T) { b.handle(pkt, eth0, now) })
	}
	if b.malformed < 5 {
		t.Errorf("%d malformed packets counted", b.malformed)
	}
	// a query (not a response) is no answer
	q := new(dns.Msg)
	q.SetQuestion(serviceName, dns.TypePTR)
	qb, _ := q.Pack()
	b.handle(qb, eth0, now)
	b.handle(good, eth0, now)
	if len(b.cameras()) != 1 {
		t.Fatal("the browser stopped working after malformed packets")
	}
}

func TestBrowserBoundsItsCache(t *testing.T) {
	b := testBrowser(nil)
	now := time.Now()
	for i := range 1000 {
		b.handle(announcement(fmt.Sprintf("cam%d", i), fmt.Sprintf("h%d.local.", i), 100, "id=X"), eth0, now)
	}
	if len(b.instances) > maxInstances || len(b.hosts) > maxHosts {
		t.Fatalf("cache grew to %d instances, %d hosts", len(b.instances), len(b.hosts))
	}
	m := new(dns.Msg)
	m.Response = true
	for i := range 100 {
		m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: "h1.local.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 100}, A: net.IPv4(10, 1, 0, byte(i))})
	}
	pkt, _ := m.Pack()
	b.handle(pkt, eth0, now)
	if n := len(b.hosts["h1.local."]); n > maxAddrs {
		t.Fatalf("%d addresses kept for one host", n)
	}
}

func TestFirstLabel(t *testing.T) {
	for in, want := range map[string]string{
		`Front\ Door`:    "Front Door",
		`Front\032Door`:  "Front Door",
		`My\.Cam`:        "My.Cam",
		`back\\slash`:    `back\slash`,
		`caf\195\169`:    "café",
		`two.labels`:     "",
		`\999`:           "",
		``:               "",
		`trailing\`:      `trailing\`,
		`digits\12`:      "digits12",
		`Salle de bains`: "Salle de bains",
	} {
		got, ok := firstLabel(in)
		if (want == "") == ok || got != want {
			t.Errorf("firstLabel(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}

// FuzzBrowserPacket checks that no datagram crashes the browser or grows
// its cache past its bounds.
func FuzzBrowserPacket(f *testing.F) {
	f.Add(announcement("Cam", "camd-abcd.local.", 100, "id=X"))
	f.Add(announcement(`a\.b`, "h.local.", 0, "id=Y", "disc=1"))
	f.Add([]byte{0, 0, 0x84, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1})
	f.Fuzz(func(t *testing.T, pkt []byte) {
		b := testBrowser(func(Camera, bool) {})
		now := time.Now()
		b.handle(pkt, eth0, now)
		b.reconcile(now.Add(time.Hour))
		if len(b.instances) > maxInstances || len(b.hosts) > maxHosts {
			t.Fatal("cache past its bounds")
		}
		b.query(now)
		b.missing(now)
	})
}

// TestBrowserRefreshesBeforeExpiry: a listed camera's records are asked
// for again at 80, 85, 90 and 95 % of their TTL (RFC 6762 §5.2), so that
// a camera still there is not dropped when its address records expire.
func TestBrowserRefreshesBeforeExpiry(t *testing.T) {
	gone := 0
	b := testBrowser(func(c Camera, g bool) {
		if g {
			gone++
		}
	})
	now := time.Now()
	b.handle(announcement("Cam", "camd-abcd.local.", 4500, "id=X"), eth0, now) // addresses: 120 s
	var asked []time.Duration
	for s := time.Duration(0); s < 120*time.Second; s += 250 * time.Millisecond {
		if q := b.missing(now.Add(s)); q != nil {
			asked = append(asked, s)
		}
	}
	want := []time.Duration{96 * time.Second, 102 * time.Second, 108 * time.Second, 114 * time.Second}
	if !slices.Equal(asked, want) {
		t.Errorf("asked at %v, want %v", asked, want)
	}
	// the answer to the first refresh keeps the camera listed
	b.handle(announcement("Cam", "camd-abcd.local.", 4500, "id=X"), eth0, now.Add(96*time.Second))
	b.reconcile(now.Add(150 * time.Second))
	if gone != 0 || len(b.cameras()) != 1 {
		t.Fatalf("refreshed camera dropped (gone %d)", gone)
	}
	if q := b.missing(now.Add(151 * time.Second)); q != nil {
		t.Error("asked again right after a refresh")
	}
}

func TestAskQuery(t *testing.T) {
	b, err := askQuery().Pack()
	if err != nil {
		t.Fatal(err)
	}
	var m dns.Msg
	if err := m.Unpack(b); err != nil {
		t.Fatal(err)
	}
	if len(b) != queryPadding || len(m.Question) != 1 || m.Question[0].Qclass != dns.ClassINET|1<<15 || m.Question[0].Name != serviceName {
		t.Fatalf("%d bytes: %v", len(b), &m)
	}
}
