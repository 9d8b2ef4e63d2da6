package whep

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/cc"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/camd-project/camd/media"
)

// session returns the session that a POST answered with Location loc.
func (ts *testServer) session(t *testing.T, loc string) *session {
	t.Helper()
	ts.srv.mu.Lock()
	defer ts.srv.mu.Unlock()
	sess := ts.srv.sessions[loc[strings.LastIndexByte(loc, '/')+1:]]
	if sess == nil {
		t.Fatalf("no session at %s", loc)
	}
	return sess
}

// post offers a viewer that never does ICE and returns its session's
// Location.
func (ts *testServer) post(t *testing.T) string {
	t.Helper()
	resp, body := do(t, http.MethodPost, ts.url, ContentTypeSDP, offer(t, []webrtc.RTPCodecParameters{h264CB}, nil))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST: %s %s", resp.Status, body)
	}
	return resp.Header.Get("Location")
}

// TestConnectedAfterEndLeavesNoConsumer: pion reports each state change
// on a goroutine of its own, so "connected" can arrive after the session
// ended (its viewer left, or the server is closing). It must not subscribe
// a consumer to the live hub that nobody would close.
func TestConnectedAfterEndLeavesNoConsumer(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  func(*testServer, *session, string)
	}{
		{"DELETE", func(ts *testServer, _ *session, loc string) {
			do(t, http.MethodDelete, ts.http.URL+loc, "", "")
		}},
		{"server closed", func(ts *testServer, _ *session, _ string) { ts.srv.Close() }},
		{"connection failed", func(_ *testServer, sess *session, _ string) {
			sess.onState(webrtc.PeerConnectionStateFailed)
			<-sess.done
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t, Options{})
			loc := ts.post(t)
			sess := ts.session(t, loc)
			tc.end(ts, sess, loc)
			sess.onState(webrtc.PeerConnectionStateConnected) // pion, late
			ts.srv.Close()
			if n := len(ts.hub.Stats().Consumers); n != 0 {
				t.Fatalf("%d consumers left on the hub", n)
			}
		})
	}
	t.Run("connected while ending", func(t *testing.T) {
		ts := newTestServer(t, Options{})
		var wg sync.WaitGroup
		for range 8 {
			loc := ts.post(t)
			sess := ts.session(t, loc)
			wg.Go(func() { sess.onState(webrtc.PeerConnectionStateConnected) })
			do(t, http.MethodDelete, ts.http.URL+loc, "", "")
		}
		wg.Wait()
		ts.srv.Close()
		if n := len(ts.hub.Stats().Consumers); n != 0 {
			t.Fatalf("%d consumers left on the hub", n)
		}
	})
}

// noMux stands in for the ICE UDP mux of a server without sockets.
type noMux struct{ ice.UDPMux }

func (noMux) Close() error { return nil }

// bubbleServer is a server without sockets, for sessions driven by hand
// inside a synctest bubble: no peer connection, only the session's own
// logic and timers.
func bubbleServer(h hub, opts Options) *Server {
	opts.defaults()
	return newServer(h, opts, &engine{mux: noMux{}})
}

func consumers(h *media.Hub) int { return len(h.Stats().Consumers) }

func reason(s *session) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closeReason
}

func TestSessionStates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := media.NewHub(media.HubOptions{})
		h.Begin(media.SourceInfo{Name: "fake", ForcesKeyframes: true})
		srv := bubbleServer(h, Options{})
		reserve := func() *session {
			sess, err := srv.reserve(nil, nil, time.Now(), user{owner: true})
			if err != nil {
				t.Fatal(err)
			}
			return sess
		}
		// Connected, disconnected, connected again: one consumer.
		a := reserve()
		for _, st := range []webrtc.PeerConnectionState{webrtc.PeerConnectionStateConnecting, webrtc.PeerConnectionStateConnected,
			webrtc.PeerConnectionStateDisconnected, webrtc.PeerConnectionStateConnected} {
			a.onState(st)
		}
		synctest.Wait()
		if n := consumers(h); n != 1 {
			t.Fatalf("%d consumers for one connected viewer", n)
		}

		// Failed, then a late "connected": ended, nothing subscribed.
		b := reserve()
		b.onState(webrtc.PeerConnectionStateFailed)
		b.onState(webrtc.PeerConnectionStateConnected)
		synctest.Wait()
		if n := consumers(h); n != 1 || reason(b) != "connection failed" {
			t.Fatalf("after failed then connected: %d consumers, reason %q", n, reason(b))
		}

		// Closed by pion.
		c := reserve()
		c.onState(webrtc.PeerConnectionStateClosed)
		synctest.Wait()
		if reason(c) != "connection closed" || srv.Stats().Viewers != 1 {
			t.Fatalf("closed connection: reason %q, %d viewers", reason(c), srv.Stats().Viewers)
		}

		// The viewer leaves; its consumer leaves the hub with it.
		a.close("viewer left")
		if n := consumers(h); n != 0 || srv.Stats().Viewers != 0 {
			t.Fatalf("after DELETE: %d consumers, %d viewers", n, srv.Stats().Viewers)
		}
		srv.Close()
	})
}

func TestSessionThatDoesNotConnectIsFreedAtICETimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := media.NewHub(media.HubOptions{})
		h.Begin(media.SourceInfo{Name: "fake", ForcesKeyframes: true})
		stopped := make(chan struct{}, 2)
		feed := &Feed{Hub: h, Stopped: func() { stopped <- struct{}{} }}
		srv := bubbleServer(h, Options{ICETimeout: 10 * time.Second})
		idle, _ := srv.reserve(feed, nil, time.Now(), user{owner: true})
		viewer, _ := srv.reserve(nil, nil, time.Now(), user{owner: true})
		time.Sleep(5 * time.Second)
		viewer.onState(webrtc.PeerConnectionStateConnected)

		time.Sleep(5*time.Second - time.Nanosecond)
		synctest.Wait()
		if n := srv.Stats().Viewers; n != 2 {
			t.Fatalf("%d viewers before the ICE timeout, want 2", n)
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		if n := srv.Stats().Viewers; n != 1 || reason(idle) != "did not connect in time" || len(stopped) != 1 {
			t.Fatalf("at the ICE timeout: %d viewers, idle session ended with %q, feed stopped %d times", n, reason(idle), len(stopped))
		}
		time.Sleep(time.Hour)
		if n := srv.Stats().Viewers; n != 1 || consumers(h) != 1 {
			t.Fatalf("the connected viewer was freed too: %d viewers", n)
		}
		srv.Close()
		if n := consumers(h); n != 0 {
			t.Fatalf("%d consumers after Close", n)
		}
	})
}

func TestPLIGap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := media.NewHub(media.HubOptions{})
		h.Begin(media.SourceInfo{Name: "fake", ForcesKeyframes: true})
		s := &session{consumer: h.Subscribe(media.ConsumerOptions{})}
		h.KeyframeRequested() // the join's
		for _, step := range []struct {
			after time.Duration
			want  bool
		}{
			{0, true},
			{pliGap - time.Nanosecond, false},
			{time.Nanosecond, true},
			{pliGap / 2, false},
			{pliGap, true},
		} {
			time.Sleep(step.after)
			s.keyframe()
			if got := h.KeyframeRequested(); got != step.want {
				t.Fatalf("PLI %v later: keyframe requested %v, want %v", step.after, got, step.want)
			}
		}
		if s.plis != 5 {
			t.Fatalf("counted %d PLIs, want 5", s.plis)
		}
	})
}

// fixedEstimate is a bandwidth estimator that always says the same.
type fixedEstimate struct {
	cc.BandwidthEstimator
	bps int
}

func (e fixedEstimate) GetTargetBitrate() int { return e.bps }

func TestRunSteersBitrate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := media.NewHub(media.HubOptions{})
		srv := bubbleServer(h, Options{MinBitrate: 300_000, MaxBitrate: 4_000_000})
		viewer := func(id string, bps int, feed *Feed) {
			srv.mu.Lock()
			defer srv.mu.Unlock()
			srv.sessions[id] = &session{id: id, feed: feed, est: fixedEstimate{bps: bps}, connectedAt: time.Now()}
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { srv.Run(ctx); close(done) }()
		for _, step := range []struct {
			what string
			do   func()
			want int
		}{
			{"no viewer", func() {}, 0},
			{"a viewer connected for less than 2 s", func() { viewer("a", 1_500_000, nil) }, 0},
			{"the viewer connected for 2 s", func() {}, 1_500_000},
			{"a slower viewer, just connected", func() { viewer("b", 800_000, nil) }, 1_500_000},
			{"the slower viewer connected for 2 s", func() {}, 800_000},
			{"a recording's viewer, just connected", func() { viewer("c", 400_000, &Feed{}) }, 800_000},
			{"a recording's viewer does not steer", func() {}, 800_000},
			{"a viewer below the minimum", func() { viewer("d", 10_000, nil) }, 800_000},
			{"the minimum", func() {}, 300_000},
			{"the viewers leave; one above the maximum joins", func() {
				srv.mu.Lock()
				clear(srv.sessions)
				srv.mu.Unlock()
				viewer("e", 9_000_000, nil)
			}, 0},
			{"the maximum", func() {}, 4_000_000},
		} {
			step.do()
			time.Sleep(time.Second) // one tick
			synctest.Wait()
			if got := h.TargetBitrate(); got != step.want {
				t.Fatalf("%s: target %d, want %d", step.what, got, step.want)
			}
		}
		cancel()
		<-done
	})
}

// fakeBinding is what pion hands a track when it binds it: the H.264
// codec negotiated, and a writer that counts packets.
type fakeBinding struct {
	mu      sync.Mutex
	packets int
}

func (b *fakeBinding) CodecParameters() []webrtc.RTPCodecParameters {
	return []webrtc.RTPCodecParameters{{PayloadType: 102, RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeH264, ClockRate: 90000, SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}}}
}
func (b *fakeBinding) HeaderExtensions() []webrtc.RTPHeaderExtensionParameter { return nil }
func (b *fakeBinding) SSRC() webrtc.SSRC                                      { return 1 }
func (b *fakeBinding) SSRCRetransmission() webrtc.SSRC                        { return 0 }
func (b *fakeBinding) SSRCForwardErrorCorrection() webrtc.SSRC                { return 0 }
func (b *fakeBinding) WriteStream() webrtc.TrackLocalWriter                   { return b }
func (b *fakeBinding) ID() string                                             { return "fake" }
func (b *fakeBinding) RTCPReader() interceptor.RTCPReader                     { return nil }
func (b *fakeBinding) WriteRTP(*rtp.Header, []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.packets++
	return 0, nil
}
func (b *fakeBinding) Write(p []byte) (int, error) { return len(p), nil }
func (b *fakeBinding) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.packets
}

// pion may report a connection connected a moment before it binds the
// senders (seen under load): the session waits for the binding and sends
// the keyframe then, instead of failing with errNotBound and leaving the
// viewer with nothing.
func TestConnectedBeforeBoundWaitsForTheBinding(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := media.NewHub(media.HubOptions{})
		h.Begin(media.SourceInfo{Name: "fake", ForcesKeyframes: true})
		srv := bubbleServer(h, Options{})
		sess, err := srv.reserve(nil, nil, time.Now(), user{owner: true})
		if err != nil {
			t.Fatal(err)
		}
		video := newTrack(webrtc.RTPCodecTypeVideo, constrainedBaseline)
		sess.mu.Lock()
		sess.video = video
		sess.mu.Unlock()
		sess.onState(webrtc.PeerConnectionStateConnected)
		synctest.Wait()
		h.Publish(&media.Frame{Kind: media.Video, Key: true, Captured: time.Now(), Data: fakeAU(true, 0)})
		synctest.Wait()
		if r := reason(sess); r != "" {
			t.Fatalf("the session ended before its track was bound: %s", r)
		}
		b := &fakeBinding{}
		if _, err := video.Bind(b); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if b.count() == 0 {
			t.Fatal("nothing sent once the track was bound")
		}
		if r := reason(sess); r != "" {
			t.Fatalf("the session ended: %s", r)
		}
		srv.Close()
	})
}

// readRTCP parses only compound packets that carry what it answers.
func TestWantRTCP(t *testing.T) {
	marshal := func(pkts ...rtcp.Packet) []byte {
		b, err := rtcp.Marshal(pkts)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	rr := &rtcp.ReceiverReport{SSRC: 1, Reports: []rtcp.ReceptionReport{{SSRC: 2}}}
	twcc := &rtcp.TransportLayerCC{SenderSSRC: 1, MediaSSRC: 2, PacketStatusCount: 1,
		PacketChunks: []rtcp.PacketStatusChunk{&rtcp.RunLengthChunk{PacketStatusSymbol: rtcp.TypeTCCPacketReceivedSmallDelta, RunLength: 1}},
		RecvDeltas:   []*rtcp.RecvDelta{{Type: rtcp.TypeTCCPacketReceivedSmallDelta, Delta: 250}}}
	nack := &rtcp.TransportLayerNack{SenderSSRC: 1, MediaSSRC: 2, Nacks: []rtcp.NackPair{{PacketID: 7}}}
	for _, tc := range []struct {
		name string
		raw  []byte
		want bool
	}{
		{"receiver report", marshal(rr), false},
		{"transport-wide feedback", marshal(rr, twcc), false},
		{"NACK after a report", marshal(rr, nack), true},
		{"PLI", marshal(&rtcp.PictureLossIndication{SenderSSRC: 1, MediaSSRC: 2}), true},
		{"FIR", marshal(&rtcp.FullIntraRequest{SenderSSRC: 1, MediaSSRC: 2, FIR: []rtcp.FIREntry{{SSRC: 2}}}), true},
		{"truncated", marshal(rr, nack)[:10], false},
		{"empty", nil, false},
	} {
		if got := wantRTCP(tc.raw); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
