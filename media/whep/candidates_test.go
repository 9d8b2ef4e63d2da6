package whep

import (
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/pion/webrtc/v4"
)

func TestCandidateFilter(t *testing.T) {
	cases := []struct {
		from   string // the request's address; "" unknown
		remote bool   // Options.RemoteAccess
		pass   []string
		drop   []string
	}{
		{from: "127.0.0.1",
			pass: []string{"127.0.0.1", "127.0.0.5"},
			drop: []string{"192.168.1.2", "203.0.113.7", "8.8.8.8", "::1", "169.254.1.1", "camera.local"}},
		{from: "192.168.1.10",
			pass: []string{"192.168.1.2", "10.0.0.1", "172.16.0.1", "::ffff:192.168.1.2"},
			drop: []string{"203.0.113.7", "127.0.0.1", "169.254.1.1", "100.64.0.1", "fd00::1", "0.0.0.0", "224.0.0.251", "255.255.255.255", "x.local"}},
		{from: "fd00::5",
			pass: []string{"fd00::1", "fd12:3456::1"},
			drop: []string{"2001:db8::1", "fe80::1", "192.168.1.2", "::1", "ff02::fb"}},
		{from: "fe80::5", pass: []string{"fe80::1"}, drop: []string{"fd00::1", "2001:db8::1"}},
		{from: "2001:db8::5", pass: []string{"2001:db8::1", "2a00::1"}, drop: []string{"203.0.113.7", "fd00::1"}},
		{from: "100.64.1.1", pass: []string{"100.100.0.1"}, drop: []string{"192.168.1.2", "203.0.113.7"}},
		{from: "203.0.113.9", pass: []string{"198.51.100.1"}, drop: []string{"192.168.1.2", "127.0.0.1"}},
		{from: "", drop: []string{"127.0.0.1", "192.168.1.2", "203.0.113.7"}},
		{from: "192.168.1.10", remote: true,
			pass: []string{"203.0.113.7", "fd00::1", "127.0.0.1", "100.64.0.1"},
			drop: []string{"0.0.0.0", "224.0.0.251", "camera.local"}},
	}
	for _, c := range cases {
		f := candidateFilter{any: c.remote}
		if c.from != "" {
			f.from = netip.MustParseAddr(c.from)
		}
		for _, addr := range slices.Concat(c.pass, c.drop) {
			pass, err := f.check(hostCandidate(1, addr, 50000))
			if err != nil {
				t.Errorf("from %s: %s: %v", c.from, addr, err)
				continue
			}
			if want := slices.Contains(c.pass, addr); pass != want {
				t.Errorf("from %s (remote access %v): candidate %s passes %v, want %v", c.from, c.remote, addr, pass, want)
			}
		}
	}
}

func hostCandidate(i int, addr string, port int) string {
	return fmt.Sprintf("candidate:%d 1 udp %d %s %d typ host", i, 2130706431-i, addr, port)
}

// withCandidates adds candidate lines to the first m-section of an offer.
func withCandidates(sdp string, cands ...string) string {
	i := strings.Index(sdp, "a=mid:")
	i += strings.Index(sdp[i:], "\n") + 1
	var b strings.Builder
	for _, c := range cands {
		b.WriteString("a=" + c + "\r\n")
	}
	return sdp[:i] + b.String() + sdp[i:]
}

// remoteCandidates returns the addresses of the remote candidates that
// pion's ICE agent holds for sess.
func remoteCandidates(sess *session) []string {
	sess.mu.Lock()
	pc := sess.pc
	sess.mu.Unlock()
	var addrs []string
	for _, s := range pc.GetStats() {
		if c, ok := s.(webrtc.ICECandidateStats); ok && c.Type == webrtc.StatsTypeRemoteCandidate {
			addrs = append(addrs, fmt.Sprintf("%s:%d", c.IP, c.Port))
		}
	}
	slices.Sort(addrs)
	return addrs
}

// TestCandidatesOutsideTheClientsScopeNeverReachPion: a client on
// loopback offers and trickles candidates on the LAN and the Internet;
// pion gets only the loopback ones, so camd sends no check elsewhere.
func TestCandidatesOutsideTheClientsScopeNeverReachPion(t *testing.T) {
	ts := newTestServer(t, Options{})
	o := withCandidates(offer(t, []webrtc.RTPCodecParameters{h264CB}, nil),
		hostCandidate(1, "127.0.0.1", 40001),
		hostCandidate(2, "203.0.113.7", 40002),
		hostCandidate(3, "192.168.1.20", 40003),
		hostCandidate(4, "::1", 40004),
		hostCandidate(5, "f81b0c9e-2b39-4c3e-a5b9-7d8c2b0d6b1a.local", 40005),
		"candidate:6 1 udp 1694498815 8.8.8.8 40006 typ srflx raddr 192.168.1.20 rport 40003",
	)
	resp, body := do(t, http.MethodPost, ts.url, ContentTypeSDP, o)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST: %s %s", resp.Status, body)
	}
	loc := resp.Header.Get("Location")
	sess := ts.session(t, loc)
	sess.mu.Lock()
	handed := sess.pc.RemoteDescription().SDP
	sess.mu.Unlock()
	var lines []string
	for line := range strings.Lines(handed) {
		if strings.HasPrefix(line, "a=candidate:") {
			lines = append(lines, strings.TrimSpace(line))
		}
	}
	if want := []string{"a=" + hostCandidate(1, "127.0.0.1", 40001)}; !slices.Equal(lines, want) {
		t.Errorf("pion got the offer's candidates %q, want %q", lines, want)
	}

	frag := "a=mid:0\r\na=" + hostCandidate(7, "198.51.100.1", 40007) + "\r\na=" + hostCandidate(8, "10.1.2.3", 40008) +
		"\r\na=" + hostCandidate(9, "127.0.0.1", 40009) + "\r\n"
	if resp, body := do(t, http.MethodPatch, ts.http.URL+loc, ContentTypeFrag, frag); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("PATCH: %s %s", resp.Status, body)
	}
	want := []string{"127.0.0.1:40001", "127.0.0.1:40009"}
	waitFor(t, "pion to add the loopback candidates", func() bool { return len(remoteCandidates(sess)) >= len(want) })
	if got := remoteCandidates(sess); !slices.Equal(got, want) {
		t.Errorf("pion's remote candidates %q, want %q", got, want)
	}
}

func TestRemoteAccessLetsEveryScopeThrough(t *testing.T) {
	ts := newTestServer(t, Options{RemoteAccess: true})
	o := withCandidates(offer(t, []webrtc.RTPCodecParameters{h264CB}, nil),
		hostCandidate(1, "127.0.0.1", 40001), hostCandidate(2, "203.0.113.7", 40002))
	resp, body := do(t, http.MethodPost, ts.url, ContentTypeSDP, o)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST: %s %s", resp.Status, body)
	}
	sess := ts.session(t, resp.Header.Get("Location"))
	want := []string{"127.0.0.1:40001", "203.0.113.7:40002"}
	waitFor(t, "pion to add both candidates", func() bool { return slices.Equal(remoteCandidates(sess), want) })
}

func TestCandidateLimit(t *testing.T) {
	ts := newTestServer(t, Options{})
	base := offer(t, []webrtc.RTPCodecParameters{h264CB}, nil)
	cands := func(from, n int) []string {
		var cs []string
		for i := from; i < from+n; i++ {
			cs = append(cs, hostCandidate(i, "127.0.0.1", 40000+i))
		}
		return cs
	}
	frag := func(cs []string) string {
		return "a=mid:0\r\na=" + strings.Join(cs, "\r\na=") + "\r\n"
	}

	resp, body := do(t, http.MethodPost, ts.url, ContentTypeSDP, withCandidates(base, cands(0, 17)...))
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "carries 17; camd takes at most 16") {
		t.Fatalf("17 candidates: %s %q", resp.Status, body)
	}
	// Ten candidates in each of two bundled m-sections: ten candidates.
	both := offer(t, []webrtc.RTPCodecParameters{h264CB}, []webrtc.RTPCodecParameters{opus})
	var twice strings.Builder
	for line := range strings.Lines(both) {
		twice.WriteString(line)
		if strings.HasPrefix(line, "a=mid:") {
			for _, c := range cands(0, 10) {
				twice.WriteString("a=" + c + "\r\n")
			}
		}
	}
	if strings.Count(twice.String(), "a=candidate:") != 20 {
		t.Fatalf("the offer does not have two m-sections: %s", twice.String())
	}
	resp, body = do(t, http.MethodPost, ts.url, ContentTypeSDP, twice.String())
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("10 candidates in two m-sections: %s %s", resp.Status, body)
	}
	loc := ts.http.URL + resp.Header.Get("Location")

	for _, c := range []struct {
		name string
		frag string
		code int
		msg  string
	}{
		{"17 in one PATCH", frag(cands(100, 17)), 400, "the PATCH carries 17; camd takes at most 16"},
		{"7 more: 17 in the session", frag(cands(10, 7)), 400, "the session would carry 17; camd takes at most 16"},
		{"6 more: 16 in the session", frag(cands(10, 6)), 204, ""},
		{"the same 6 again", frag(cands(10, 6)), 204, ""},
		{"one of the offer's again", frag(cands(0, 1)), 204, ""},
		{"a 17th", frag(cands(16, 1)), 400, "the session would carry 17"},
	} {
		resp, body := do(t, http.MethodPatch, loc, ContentTypeFrag, c.frag)
		if resp.StatusCode != c.code || !strings.Contains(body, c.msg) {
			t.Errorf("%s: %s %q, want %d with %q", c.name, resp.Status, body, c.code, c.msg)
		}
	}
}
