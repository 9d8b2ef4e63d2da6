package whep

import (
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/cc"
	"github.com/pion/interceptor/pkg/gcc"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/sdp/v3"
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
func newMediaEngine() (*webrtc.MediaEngine, error) {
	m := &webrtc.MediaEngine{}
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
		if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: twccURI}, k); err != nil {
			return nil, err
		}
	}
	for _, uri := range []string{absCaptureTimeURI, playoutDelayURI} {
		if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: uri}, webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverDirectionSendonly); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// engine holds the pion APIs shared by every session of a server: api
// runs congestion control for sources whose bitrate can be steered;
// plainAPI leaves it out for passthrough, where no estimate could change
// anything and its per-viewer packet history would be wasted.
type engine struct {
	api, plainAPI *webrtc.API
	mux           ice.UDPMux
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
	for _, r := range []*interceptor.Registry{reg, plain} {
		sr, err := report.NewSenderInterceptor()
		if err != nil {
			return nil, err
		}
		r.Add(sr)
	}
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

	logs := pionLogs{log: o.logger}
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

	e.api = webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg), webrtc.WithSettingEngine(se))
	e.plainAPI = webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(plain), webrtc.WithSettingEngine(se))
	return e, nil
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
