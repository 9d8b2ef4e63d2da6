package wsd

import (
	"encoding/xml"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testResponder is a Responder without sockets: answer and receive work,
// replies stay in its queue.
func testResponder(o Options) *Responder {
	if o.Target == nil {
		o.Target = func(ifIndex int, v6 bool) Target {
			return Target{
				Endpoint: EndpointFor("ABCDEFGHIJKLMNOP"),
				Types:    []xml.Name{NetworkVideoTransmitter, deviceType},
				Scopes: []string{"onvif://www.onvif.org/type/video_encoder", "onvif://www.onvif.org/name/Front%20Door",
					"onvif://www.onvif.org/hardware/generic"},
				XAddrs:          []string{"https://10.0.0.1:8443/"},
				MetadataVersion: 1,
			}
		}
	}
	o.defaults()
	return &Responder{o: o, ifaces: map[int]bool{1: true}, lim: newLimiter(o), queue: make(chan reply, 64), done: make(chan struct{})}
}

// minimalProbe is the smallest probe a sender could craft.
const minimalProbe = `<Envelope xmlns="http://www.w3.org/2003/05/soap-envelope"><Header><Action xmlns="http://schemas.xmlsoap.org/ws/2004/08/addressing">http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe</Action><MessageID xmlns="http://schemas.xmlsoap.org/ws/2004/08/addressing">x</MessageID></Header><Body/></Envelope>`

func TestAnswer(t *testing.T) {
	r := testResponder(Options{})
	hello := Hello(r.o.Target(1, false), Sequence{1, 1})
	printer := strings.NewReplacer("dn:NetworkVideoTransmitter", "p:PrintDeviceType",
		`xmlns:dn="http://www.onvif.org/ver10/network/wsdl"`, `xmlns:p="http://schemas.microsoft.com/windows/2006/08/wdp/print"`).Replace(specProbe)
	for _, tc := range []struct {
		name   string
		pkt    string
		want   reason
		scopes bool
	}{
		{"spec probe", specProbe, answered, true},
		{"probe for everything", strings.Replace(specProbe, "<d:Types>dn:NetworkVideoTransmitter</d:Types>", "", 1), answered, true},
		{"our own probe", string(must(ProbeMessage(NetworkVideoTransmitter))), answered, true},
		{"printer probe", printer, noMatch, false},
		{"other scope", strings.Replace(specProbe, "</d:Probe>", "<d:Scopes>onvif://www.onvif.org/location/garage</d:Scopes></d:Probe>", 1), noMatch, false},
		{"Hello", string(hello), ignored, false},
		{"no MessageID", strings.Replace(specProbe, "MessageID", "RelatesTo", 2), malformed, false},
		{"huge MessageID", strings.Replace(specProbe, "uuid:84ede3de", "uuid:"+strings.Repeat("a", 300), 1), malformed, false},
		{"oversized", specProbe + "<!--" + strings.Repeat("x", MaxMessage) + "-->", malformed, false},
		{"malformed", specProbe[:200], malformed, false},
		{"minimal probe: reply would be too large", minimalProbe, oversize, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, id, why := r.answer([]byte(tc.pkt), 1, false)
			if why != tc.want {
				t.Fatalf("reason %d, want %d", why, tc.want)
			}
			if tc.want != answered {
				if b != nil {
					t.Fatal("a reply for a datagram that gets none")
				}
				return
			}
			if len(b) > r.o.MaxReplyFactor*len(tc.pkt) {
				t.Fatalf("reply of %d bytes to a probe of %d", len(b), len(tc.pkt))
			}
			m, err := Parse(b)
			if err != nil || m.RelatesTo != id || m.Action != ActionProbeMatches || (len(m.Matches[0].Scopes) > 0) != tc.scopes {
				t.Fatalf("reply %s: %+v %v", b, m, err)
			}
		})
	}
	if _, _, why := r.answer([]byte(specProbe), 1, false); why != answered {
		t.Fatal("the spec probe is not answered")
	}
	if b, _, _ := r.answer([]byte(specProbe), 1, false); len(b) > 2*len(specProbe) {
		t.Errorf("reply to the spec probe is %d bytes, over twice the probe's %d", len(b), len(specProbe))
	}
}

func must(b []byte, _ string) []byte { return b }

func TestLimiter(t *testing.T) {
	l := newLimiter(Options{Rate: 10, Burst: 20, PerSenderRate: 2, PerSenderBurst: 4})
	now := time.Unix(1000, 0)
	a := netip.MustParseAddr("10.0.0.2")
	n := 0
	for range 100 {
		if l.Allow(now, a) {
			n++
		}
	}
	if n != 4 {
		t.Fatalf("one sender got %d replies at once, want the burst of 4", n)
	}
	if !l.Allow(now.Add(500*time.Millisecond), a) || l.Allow(now.Add(500*time.Millisecond), a) {
		t.Fatal("one sender does not get one reply per 500 ms")
	}
	// many senders at once: the total burst bounds them
	n = 0
	for i := range 1000 {
		if l.Allow(now.Add(time.Second), netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)})) {
			n++
		}
	}
	if n > 20 {
		t.Fatalf("%d replies to 1000 senders at once, want at most 20", n)
	}
}

// TestProbeFlood sends 5000 probes from 500 addresses, each twice, and
// checks that what is queued to send stays within the burst: in the
// bubble no time passes, so no token comes back.
func TestProbeFlood(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := testResponder(Options{})
		for i := range 5000 {
			from := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 2, byte(i % 500 >> 8), byte(i % 500)}), 3702)
			p := strings.Replace(specProbe, "84ede3de", fmt.Sprintf("%08x", i), 1)
			r.receive([]byte(p), from, GroupV4, 1)
			r.receive([]byte(p), from, GroupV4, 1) // the SOAP-over-UDP repeat
			r.receive([]byte(p), from, GroupV4, 7) // another interface: ignored
		}
		s := r.Stats()
		if q := len(r.queue); q != r.o.Burst {
			t.Fatalf("%d replies queued after a flood, want the burst of %d", q, r.o.Burst)
		}
		if s.Received != 10000 || s.Duplicates == 0 || s.Limited == 0 {
			t.Fatalf("stats %+v", s)
		}
	})
}

func TestRecent(t *testing.T) {
	var r recent
	if r.seen("a") || !r.seen("a") {
		t.Fatal("a repeat is not seen")
	}
	for i := range 100 {
		r.seen(fmt.Sprint(i))
	}
	if r.seen("a") || len(r.set) > len(r.ring) {
		t.Fatalf("old IDs not forgotten: %d kept", len(r.set))
	}
}

// FuzzProbe drives the WS-Discovery handler with any datagram: it never
// panics, and a reply parses back, answers the probe's MessageID and is
// never more than MaxReplyFactor times the datagram's size.
func FuzzProbe(f *testing.F) {
	r := testResponder(Options{})
	f.Add([]byte(specProbe))
	f.Add([]byte(minimalProbe))
	f.Add(must(ProbeMessage(NetworkVideoTransmitter, deviceType)))
	f.Add(Hello(r.o.Target(1, false), Sequence{1, 1}))
	f.Add([]byte(strings.Replace(specProbe, "</d:Probe>", `<d:Scopes MatchBy="`+MatchRFC3986+`">onvif://www.onvif.org/name</d:Scopes></d:Probe>`, 1)))
	f.Fuzz(func(t *testing.T, pkt []byte) {
		b, id, why := r.answer(pkt, 1, false)
		if b == nil {
			return
		}
		if why != answered || len(b) > r.o.MaxReplyFactor*len(pkt) {
			t.Fatalf("reply of %d bytes to %d", len(b), len(pkt))
		}
		m, err := Parse(b)
		if err != nil || m.RelatesTo != id {
			t.Fatalf("reply does not parse back: %v\n%s", err, b)
		}
	})
}
