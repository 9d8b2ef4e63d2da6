package whep

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/cc"
	"github.com/pion/interceptor/pkg/gcc"
	"github.com/pion/sdp/v3"
	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/packetio"
	"github.com/pion/transport/v5/stdnet"
	"github.com/pion/webrtc/v4"
)

// Payload types and formats camd sends. Several H.264 profiles are
// registered so that negotiation succeeds whichever ones a browser offers;
// the decoder handles the stream's real profile.
var (
	h264Profiles = []string{"42e01f", "42001f", "4d001f", "64001f"}
	videoFB      = []webrtc.RTCPFeedback{
		{Type: "nack"}, {Type: "nack", Parameter: "pli"}, {Type: "ccm", Parameter: "fir"},
		{Type: "transport-cc"},
	}
)

// Header extensions. twccURI carries transport-wide sequence numbers for
// congestion control. absCaptureTimeURI carries each video frame's capture
// wall clock (Frame.Captured), so that a browser can tell how old the
// picture it shows is (requestVideoFrameCallback's captureTime);
// playoutDelayURI asks the browser to play each frame as soon as it is
// decoded (min = max = 0). Each is sent only when the offer names it.
const (
	twccURI           = sdp.TransportCCURI
	absCaptureTimeURI = "http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time"
	playoutDelayURI   = "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay"
)

// newMediaEngine registers what camd can send: H.264 (packetization mode
// 1) and Opus; and G.711, which a call's phone may send.
func newMediaEngine() (*webrtc.MediaEngine, error) { return mediaEngine(true) }

// mediaEngine is newMediaEngine, with transport-wide congestion control
// (the header extension and its feedback) or without: a passthrough
// viewer's bitrate is the camera's, so nothing would read the feedback
// that the viewer sends for every packet.
func mediaEngine(twcc bool) (*webrtc.MediaEngine, error) {
	m := &webrtc.MediaEngine{}
	videoFB := videoFB
	if !twcc {
		videoFB = videoFB[:len(videoFB)-1]
	}
	for i, p := range h264Profiles {
		c := webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{
				MimeType:     webrtc.MimeTypeH264,
				ClockRate:    90000,
				SDPFmtpLine:  "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=" + p,
				RTCPFeedback: videoFB,
			},
			PayloadType: webrtc.PayloadType(102 + 2*i),
		}
		if err := m.RegisterCodec(c, webrtc.RTPCodecTypeVideo); err != nil {
			return nil, err
		}
	}
	opus := webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2,
			SDPFmtpLine:  "minptime=10;useinbandfec=1",
			RTCPFeedback: []webrtc.RTCPFeedback{{Type: "transport-cc"}},
		},
		PayloadType: 111,
	}
	if !twcc {
		opus.RTCPFeedback = nil
	}
	if err := m.RegisterCodec(opus, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, err
	}
	// A call's phone may talk in G.711 (browsers offer it); camd sends
	// Opus only, so live view's answers never name these.
	for _, c := range []webrtc.RTPCodecParameters{
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000}, PayloadType: 0},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMA, ClockRate: 8000}, PayloadType: 8},
	} {
		if err := m.RegisterCodec(c, webrtc.RTPCodecTypeAudio); err != nil {
			return nil, err
		}
	}
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if twcc {
			if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: twccURI}, k); err != nil {
				return nil, err
			}
		}
	}
	for _, uri := range []string{absCaptureTimeURI, playoutDelayURI} {
		if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: uri}, webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverDirectionSendonly); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// engine holds what the pion APIs of a server's sessions share: with
// congestion control (newAPI(true, nil)) for sources whose bitrate can be
// steered; without for passthrough, where no estimate could change
// anything and its per-viewer packet history would be wasted; a
// passthrough viewer of live view also goes without transport-wide
// congestion control and gets its RTCP pushed (newAPI(false, handle)).
// Sender reports are the tracks' own (track.report), not an
// interceptor's: no goroutine and timer per viewer.
type engine struct {
	media *webrtc.MediaEngine
	// viewerMedia is the media engine of a live passthrough viewer:
	// without transport-wide congestion control.
	viewerMedia *webrtc.MediaEngine
	steer       *interceptor.Registry // congestion control
	plain       *interceptor.Registry
	settings    webrtc.SettingEngine
	mux         ice.UDPMux
	nets        netCache
	// batch sends each frame's packets in one system call; nil when the
	// socket is not a UDP socket.
	batch *batchConn
	// estimators receives each new peer connection's bandwidth estimator;
	// the server takes it right after creating the connection.
	estimators chan cc.BandwidthEstimator
}

type engineOptions struct {
	conn            net.PacketConn
	includeLoopback bool
	iceTimeout      time.Duration
	minBitrate      int
	maxBitrate      int
	startBitrate    int
	logger          *slog.Logger
}

func newEngine(o engineOptions) (*engine, error) {
	m, err := newMediaEngine()
	if err != nil {
		return nil, fmt.Errorf("whep: media engine: %w", err)
	}
	e := &engine{estimators: make(chan cc.BandwidthEstimator, 1)}

	reg, plain := &interceptor.Registry{}, &interceptor.Registry{}
	ccf, err := cc.NewInterceptor(func() (cc.BandwidthEstimator, error) {
		return gcc.NewSendSideBWE(
			gcc.SendSideBWEInitialBitrate(o.startBitrate),
			gcc.SendSideBWEMinBitrate(o.minBitrate),
			gcc.SendSideBWEMaxBitrate(o.maxBitrate),
			gcc.SendSideBWEPacer(gcc.NewNoOpPacer()),
		)
	})
	if err != nil {
		return nil, err
	}
	ccf.OnNewPeerConnection(func(_ string, est cc.BandwidthEstimator) {
		select {
		case e.estimators <- est:
		default:
		}
	})
	// Interceptors added later wrap earlier ones: the header extension
	// must be stamped before congestion control sees the packet.
	reg.Add(twccOnlyFactory{ccf})
	reg.Add(twccStamperFactory{})
	plain.Add(twccStamperFactory{})

	logs := newPionLogs(o.logger)
	se := webrtc.SettingEngine{LoggerFactory: logs}
	conn := newBatchConn(o.conn, o.logger)
	e.batch, _ = conn.(*batchConn)
	e.mux = webrtc.NewICEUDPMux(logs.NewLogger("ice-mux"), conn)
	se.SetICEUDPMux(e.mux)
	se.SetIncludeLoopbackCandidate(o.includeLoopback)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
	// Multicast DNS stays off: camd never sends multicast unless discovery
	// is turned on, and candidates are plain addresses on a LAN.
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	// Disconnected after half the timeout without a packet; failed
	// (pion counts its failed timeout from disconnected) at the whole:
	// a peer that vanished is let go within ice_timeout.
	se.SetICETimeouts(o.iceTimeout/2, o.iceTimeout-o.iceTimeout/2, 2*time.Second)
	se.DisableMediaEngineCopy(false)

	if e.viewerMedia, err = mediaEngine(false); err != nil {
		return nil, fmt.Errorf("whep: media engine: %w", err)
	}
	e.media, e.steer, e.plain, e.settings = m, reg, plain, se
	return e, nil
}

// newAPI returns the API of one peer connection: with congestion control
// (steer) or without. With handle set (a live viewer of a passthrough
// source; steer must be false), the connection goes without
// transport-wide congestion control (viewerMedia: the viewer sends no
// feedback per packet that nothing would read), and the viewer's RTCP
// goes to handle (with the SSRC it is addressed to) as SRTCP decrypts
// it, on pion's SRTCP read loop, instead of waiting in a buffer for a
// goroutine to read it (SettingEngine.BufferFactory): two goroutines and
// their buffers less per viewer. handle sees only packets wantRTCP
// selects, one at a time, and must not keep pkt. Congestion control reads
// RTCP through its interceptors, so its viewers keep the reading
// goroutines. Every connection's ICE agent gets the shared list of
// network interfaces (netCache).
func (e *engine) newAPI(steer bool, handle func(ssrc uint32, pkt []byte)) *webrtc.API {
	se := e.settings
	se.SetNet(e.nets.get())
	m, reg := e.media, e.plain
	if steer {
		reg = e.steer
	}
	if handle != nil {
		m = e.viewerMedia
		se.BufferFactory = func(kind packetio.BufferPacketType, ssrc uint32) io.ReadWriteCloser {
			if kind == packetio.RTCPBufferPacket {
				return &rtcpSink{ssrc: ssrc, handle: handle, closed: make(chan struct{})}
			}
			// RTP a viewer should not send: buffered as pion would.
			b := packetio.NewBuffer()
			b.SetLimitSize(rtpBufferLimit)
			return rtpBuffer{b}
		}
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg), webrtc.WithSettingEngine(se))
}

// netMaxAge is how long ICE agents share one list of the network
// interfaces.
const netMaxAge = 5 * time.Second

// netCache hands the ICE agents of new connections one list of the
// network interfaces and their addresses, made afresh when it is older
// than netMaxAge: pion makes one per agent otherwise (stdnet.NewNet, 6 KB
// of netlink answers kept for the connection's life, and two netlink
// dumps per viewer). An interface that appeared within the last
// netMaxAge is missed only by server-reflexive gathering (STUN); host
// candidates come from the shared UDP mux, which lists the interfaces
// when it starts.
type netCache struct {
	mu sync.Mutex
	n  *stdnet.Net
	at time.Time
}

// get returns the current list (nil if the interfaces cannot be listed:
// pion then tries itself). A list once handed out never changes: agents
// read it without a lock.
func (c *netCache) get() transport.Net {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil || time.Since(c.at) >= netMaxAge {
		n, err := stdnet.NewNet()
		if err != nil {
			return nil
		}
		c.n, c.at = n, time.Now()
	}
	return c.n
}

// rtpBufferLimit is what pion's SRTP buffers hold at most per stream.
const rtpBufferLimit = 1 << 20

// rtcpSink is one SSRC's RTCP read stream of a live passthrough viewer's
// connection (engine.newAPI): each packet written (by SRTCP's read loop)
// is handed on if wantRTCP selects it, and dropped otherwise; there is
// nothing to read.
type rtcpSink struct {
	ssrc   uint32
	handle func(ssrc uint32, pkt []byte)
	closed chan struct{}
	once   sync.Once
}

func (r *rtcpSink) Write(b []byte) (int, error) {
	if wantRTCP(b) {
		r.handle(r.ssrc, b)
	}
	return len(b), nil
}

// Read waits until the stream closes: its packets were handed on.
func (r *rtcpSink) Read([]byte) (int, error) {
	<-r.closed
	return 0, io.EOF
}

func (r *rtcpSink) Close() error {
	r.once.Do(func() { close(r.closed) })
	return nil
}

// rtpBuffer is a packetio.Buffer as an io.ReadWriteCloser.
type rtpBuffer struct{ *packetio.Buffer }

func (b rtpBuffer) Read(p []byte) (int, error) {
	n, _, err := b.Buffer.Read(p, nil)
	return n, err
}

func (b rtpBuffer) Write(p []byte) (int, error) { return b.Buffer.Write(p, nil) }

func (b rtpBuffer) ReadWithAttributes(p []byte, a packetio.Attributes) (int, packetio.Attributes, error) {
	return b.Buffer.Read(p, a)
}

func (b rtpBuffer) WriteWithAttributes(p []byte, a packetio.Attributes) (int, error) {
	return b.Buffer.Write(p, a)
}

func (e *engine) close() error { return e.mux.Close() }

// twccOnlyFactory keeps congestion control away from streams that did not
// negotiate transport-wide sequence numbers: GCC cannot estimate them and
// would refuse their packets.
type twccOnlyFactory struct{ f *cc.InterceptorFactory }

func (w twccOnlyFactory) NewInterceptor(id string) (interceptor.Interceptor, error) {
	i, err := w.f.NewInterceptor(id)
	if err != nil {
		return nil, err
	}
	return twccOnly{i}, nil
}

type twccOnly struct{ interceptor.Interceptor }

func (t twccOnly) BindLocalStream(info *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	for _, e := range info.RTPHeaderExtensions {
		if e.URI == twccURI {
			return t.Interceptor.BindLocalStream(info, w)
		}
	}
	return w
}
