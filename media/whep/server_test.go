package whep

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
	"go.uber.org/goleak"

	"github.com/camd-project/camd/media"
)

// fakeAU builds an Annex-B access unit: SPS+PPS+IDR for keyframes, a
// non-IDR slice otherwise. Slices are padded to span several RTP packets.
func fakeAU(key bool, n int) []byte {
	var b []byte
	sc := []byte{0, 0, 0, 1}
	if key {
		b = append(b, sc...)
		b = append(b, 0x67, 0x42, 0xe0, 0x1f, 0x8d, 0x68, 0x05, 0x00, 0x5b, 0xa1, 0x00, 0x00, 0x03, 0x00, 0x01)
		b = append(b, sc...)
		b = append(b, 0x68, 0xce, 0x3c, 0x80)
		b = append(b, sc...)
		b = append(b, 0x65, 0x88)
	} else {
		b = append(b, sc...)
		b = append(b, 0x41, 0x9a)
	}
	for i := range 3000 {
		b = append(b, byte(n+i)|1)
	}
	return b
}

// fakeEncoder is the source publishLoop plays by default.
var fakeEncoder = media.SourceInfo{Name: "fake", ForcesKeyframes: true, Audio: true}

// publishLoop plays a fake encoder: 100 fps video with a keyframe every 30
// frames (and on request), and 50 packets/s of audio.
func publishLoop(ctx context.Context, h *media.Hub) { publishAs(ctx, h, fakeEncoder) }

// publishAs publishes as publishLoop does, for a source described by info
// (a passthrough source: ForcesKeyframes false).
func publishAs(ctx context.Context, h *media.Hub, info media.SourceInfo) {
	h.Begin(info)
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pts := time.Duration(i) * 10 * time.Millisecond
		key := i%30 == 0 || h.KeyframeRequested()
		h.Publish(&media.Frame{Kind: media.Video, Key: key, PTS: pts, Captured: time.Now(), Data: fakeAU(key, i)})
		if i%2 == 0 {
			h.Publish(&media.Frame{Kind: media.Audio, PTS: pts, Captured: time.Now(), Data: []byte{0xfc, 0xff, 0xfe}})
		}
	}
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type testServer struct {
	srv  *Server
	hub  *media.Hub
	http *httptest.Server
	url  string
	// feedsStopped counts the playback sessions (POST /feed) that ended.
	feedsStopped *atomic.Int32
}

func testCertificate(t testing.TB) *webrtc.Certificate {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	c, err := webrtc.GenerateCertificate(key)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// newTestServer starts a server on loopback with a fake encoder. When the
// test ends, the server is closed and no goroutine may be left.
func newTestServer(t testing.TB, opts Options) *testServer {
	t.Helper()
	return newTestServerOf(t, opts, fakeEncoder)
}

// newTestServerOf is newTestServer for a source described by info.
func newTestServerOf(t testing.TB, opts Options, info media.SourceInfo) *testServer {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) }) // runs after the others
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	opts.Conn = conn
	opts.IncludeLoopback = true
	if testing.Verbose() {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug - 4}))
	}
	if opts.Certificate == nil {
		opts.Certificate = testCertificate(t)
	}
	h := media.NewHub(media.HubOptions{})
	srv, err := NewServer(h, opts)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /whep", srv.HandleOffer)
	mux.HandleFunc("OPTIONS /whep", srv.HandleOptions)
	mux.HandleFunc("PATCH /whep/{id}", srv.HandlePatch)
	mux.HandleFunc("DELETE /whep/{id}", srv.HandleDelete)
	// A playback session of the live hub, as device serves recordings.
	feedsStopped := new(atomic.Int32)
	mux.HandleFunc("POST /feed", func(w http.ResponseWriter, r *http.Request) {
		srv.HandleFeedOffer(w, r, Feed{Hub: h, Stopped: func() { feedsStopped.Add(1) }})
	})
	mux.HandleFunc("DELETE /feed/{id}", srv.HandleDelete)
	hs := httptest.NewServer(mux)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); publishAs(ctx, h, info) }()
	go func() { defer wg.Done(); srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		hs.Close()
		srv.Close()
		h.Close()
		conn.Close()
	})
	return &testServer{srv: srv, hub: h, http: hs, url: hs.URL + "/whep", feedsStopped: feedsStopped}
}

func (ts *testServer) viewers() int { return ts.srv.Stats().Viewers }

// deadline is how long a test waits for what must happen over the
// network: until shortly before go test's own timeout, so that a slow
// machine only makes the test slower, never fail.
func deadline(t testing.TB) time.Time {
	d, ok := t.(*testing.T).Deadline()
	if !ok {
		return time.Now().Add(time.Hour)
	}
	return d.Add(-5 * time.Second)
}

// waitFor polls cond until it holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline(t)) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

func TestViewReceivesVideoAndAudio(t *testing.T) {
	ts := newTestServer(t, Options{})
	var video, audio strings.Builder
	ctx, cancel := context.WithDeadline(context.Background(), deadline(t))
	defer cancel()
	// One second of the stream: 100 video frames and 50 audio packets.
	st, err := View(ctx, ts.url, ViewOptions{Video: &video, Audio: &audio, Frames: 100, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if st.FramesReceived < 100 {
		t.Errorf("received %d frames, want 100", st.FramesReceived)
	}
	if st.FramesLost != 0 {
		t.Errorf("lost %d frames on loopback", st.FramesLost)
	}
	if st.KeyFrames == 0 || st.FirstFrame <= 0 || st.FirstFrame > time.Second {
		t.Errorf("keyframes %d, first frame after %v", st.KeyFrames, st.FirstFrame)
	}
	if st.AudioPackets < 20 {
		t.Errorf("received %d audio packets", st.AudioPackets)
	}
	if !strings.HasPrefix(video.String(), "\x00\x00\x00\x01\x67") {
		t.Errorf("video output does not start with the keyframe's SPS: % x", []byte(video.String()[:8]))
	}
	if !strings.HasPrefix(audio.String(), "OggS") {
		t.Error("audio output is not Ogg")
	}
	if n := ts.viewers(); n != 0 {
		t.Errorf("%d sessions after the viewer's DELETE", n)
	}
	if ss := ts.srv.Stats(); ss.Served != 1 || ss.LatencyP50 <= 0 {
		t.Errorf("stats after one viewer: %+v", ss)
	}
}

// offer builds an SDP offer from a pion peer with the given codecs.
func offer(t *testing.T, video, audio []webrtc.RTPCodecParameters) string {
	t.Helper()
	m := &webrtc.MediaEngine{}
	for _, c := range video {
		if err := m.RegisterCodec(c, webrtc.RTPCodecTypeVideo); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range audio {
		if err := m.RegisterCodec(c, webrtc.RTPCodecTypeAudio); err != nil {
			t.Fatal(err)
		}
	}
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(m)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if len(video) > 0 {
		pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly})
	}
	if len(audio) > 0 {
		pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly})
	}
	o, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	return o.SDP
}

var (
	h264CB = webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}, PayloadType: 96}
	vp8  = webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, PayloadType: 97}
	opus = webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, PayloadType: 111}
)

func do(t *testing.T, method, url, contentType, body string) (*http.Response, string) {
	t.Helper()
	return doAs(t, nil, method, url, contentType, body)
}

// doAs makes a request with the headers hdr (a user's, see asUser).
func doAs(t *testing.T, hdr http.Header, method, url, contentType, body string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	for k, v := range hdr {
		req.Header[k] = v
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

func TestOfferErrors(t *testing.T) {
	ts := newTestServer(t, Options{})
	good := offer(t, []webrtc.RTPCodecParameters{h264CB}, []webrtc.RTPCodecParameters{opus})
	cases := []struct {
		name        string
		contentType string
		body        string
		code        int
		msg         string
	}{
		{"malformed SDP", ContentTypeSDP, "v=0\r\nthis is not sdp\r\n", 400, "malformed SDP"},
		{"empty body", ContentTypeSDP, "", 400, "malformed SDP"},
		{"no video m-line", ContentTypeSDP, offer(t, nil, []webrtc.RTPCodecParameters{opus}), 422, "no video m-line"},
		{"only VP8", ContentTypeSDP, offer(t, []webrtc.RTPCodecParameters{vp8}, []webrtc.RTPCodecParameters{opus}), 422, "video offers vp8"},
		{"sendonly video", ContentTypeSDP, strings.ReplaceAll(good, "a=recvonly", "a=sendonly"), 422, "does not receive video"},
		{"H.264 without packetization mode 1", ContentTypeSDP, strings.ReplaceAll(good, "packetization-mode=1", "packetization-mode=0"), 422, "no codec camd can send"},
		{"wrong content type", "application/json", good, 415, "Content-Type"},
		{"body over 64 KiB", ContentTypeSDP, good + strings.Repeat("a=x-pad:"+strings.Repeat("x", 1000)+"\r\n", 70), 413, "body over"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := do(t, http.MethodPost, ts.url, c.contentType, c.body)
			if resp.StatusCode != c.code || !strings.Contains(body, c.msg) {
				t.Fatalf("got %d %q, want %d with %q", resp.StatusCode, body, c.code, c.msg)
			}
		})
	}
	if n := ts.viewers(); n != 0 {
		t.Fatalf("%d sessions left behind by refused offers", n)
	}
	// The server still serves a good viewer afterwards.
	ctx, cancel := context.WithDeadline(context.Background(), deadline(t))
	defer cancel()
	if st, err := View(ctx, ts.url, ViewOptions{Frames: 1}); err != nil || st.FramesReceived == 0 {
		t.Fatalf("good viewer after bad offers: %v, %+v", err, st)
	}
}

func TestSessionResourceErrors(t *testing.T) {
	ts := newTestServer(t, Options{})
	resp, _ := do(t, http.MethodPost, ts.url, ContentTypeSDP, offer(t, []webrtc.RTPCodecParameters{h264CB}, nil))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST: %s", resp.Status)
	}
	loc := ts.http.URL + resp.Header.Get("Location")
	if resp.Header.Get("Content-Type") != ContentTypeSDP || !strings.HasPrefix(resp.Header.Get("Location"), "/whep/") {
		t.Fatalf("201 headers: %v", resp.Header)
	}

	cases := []struct {
		name, method, url, ct, body string
		code                        int
	}{
		{"PATCH garbage candidate", http.MethodPatch, loc, ContentTypeFrag, "a=mid:0\r\na=candidate:garbage here\r\n", 400},
		{"PATCH garbage line", http.MethodPatch, loc, ContentTypeFrag, "\x00\x01binary", 400},
		{"PATCH wrong content type", http.MethodPatch, loc, ContentTypeSDP, "a=end-of-candidates\r\n", 415},
		{"PATCH ICE restart", http.MethodPatch, loc, ContentTypeFrag, "a=ice-ufrag:newufrag\r\na=ice-pwd:newpasswordnewpassword\r\n", 422},
		{"PATCH good candidate", http.MethodPatch, loc, ContentTypeFrag, "a=mid:0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host\r\na=end-of-candidates\r\n", 204},
		{"PATCH unknown session", http.MethodPatch, ts.url + "/nope", ContentTypeFrag, "a=end-of-candidates\r\n", 404},
		{"DELETE unknown session", http.MethodDelete, ts.url + "/nope", "", "", 404},
		{"DELETE", http.MethodDelete, loc, "", "", 200},
		{"DELETE again", http.MethodDelete, loc, "", "", 404},
		{"PATCH deleted session", http.MethodPatch, loc, ContentTypeFrag, "a=end-of-candidates\r\n", 404},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := do(t, c.method, c.url, c.ct, c.body)
			if resp.StatusCode != c.code {
				t.Fatalf("got %d %q, want %d", resp.StatusCode, body, c.code)
			}
		})
	}
	if n := ts.viewers(); n != 0 {
		t.Fatalf("%d sessions after DELETE", n)
	}
}

func TestViewerLimitAnswers503(t *testing.T) {
	ts := newTestServer(t, Options{MaxViewers: 1, ICETimeout: 2 * time.Second})
	o := offer(t, []webrtc.RTPCodecParameters{h264CB}, nil)
	first, _ := do(t, http.MethodPost, ts.url, ContentTypeSDP, o)
	if first.StatusCode != http.StatusCreated {
		t.Fatalf("first viewer: %s", first.Status)
	}
	second, body := do(t, http.MethodPost, ts.url, ContentTypeSDP, o)
	if second.StatusCode != http.StatusServiceUnavailable || second.Header.Get("Retry-After") == "" || !strings.Contains(body, "viewer limit") {
		t.Fatalf("second viewer: %s %q, Retry-After %q", second.Status, body, second.Header.Get("Retry-After"))
	}
	// The first offer never connects (nobody answers ICE): its slot is
	// freed after the ICE timeout and a new viewer gets in.
	waitFor(t, "the unconnected session to time out", func() bool { return ts.viewers() == 0 })
	third, _ := do(t, http.MethodPost, ts.url, ContentTypeSDP, o)
	if third.StatusCode != http.StatusCreated {
		t.Fatalf("viewer after timeout: %s", third.Status)
	}
}

// TestVanishedViewerIsFreed connects a viewer whose UDP socket then
// disappears without a DELETE or a DTLS close: ICE consent fails and the
// session is freed.
func TestVanishedViewerIsFreed(t *testing.T) {
	ts := newTestServer(t, Options{ICETimeout: 2 * time.Second})
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := &webrtc.MediaEngine{}
	m.RegisterDefaultCodecs()
	se := webrtc.SettingEngine{}
	se.SetICEUDPMux(webrtc.NewICEUDPMux(nil, conn))
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly})
	connected := make(chan struct{})
	var once sync.Once
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			once.Do(func() { close(connected) })
		}
	})
	o, _ := pc.CreateOffer(nil)
	g := webrtc.GatheringCompletePromise(pc)
	pc.SetLocalDescription(o)
	<-g
	resp, answer := do(t, http.MethodPost, ts.url, ContentTypeSDP, pc.LocalDescription().SDP)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST: %s %s", resp.Status, answer)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-connected:
	case <-time.After(time.Until(deadline(t))):
		t.Fatal("viewer did not connect")
	}
	waitFor(t, "the viewer to receive frames", func() bool {
		st := ts.srv.Stats()
		return len(st.Sessions) == 1 && st.Sessions[0].Frames > 0
	})
	conn.Close() // vanish: no DELETE, no DTLS close_notify
	waitFor(t, "the vanished viewer's session to be freed", func() bool { return ts.viewers() == 0 })
	pc.Close()
}

func TestServerCloseLeavesNoGoroutines(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Run("view", func(t *testing.T) {
		ts := newTestServer(t, Options{})
		ctx, cancel := context.WithDeadline(context.Background(), deadline(t))
		defer cancel()
		if _, err := View(ctx, ts.url, ViewOptions{Frames: 10}); err != nil {
			t.Fatal(err)
		}
	})
	// The subtest's cleanup closed the server, the hub and the socket.
	goleak.VerifyNone(t, ignore)
}

func testLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return nil
}
