package whep

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	mch264 "github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media/oggwriter"

	"github.com/camd-project/camd/media/g711"
)

// ViewOptions configure View. The zero value means defaults.
type ViewOptions struct {
	// HTTPClient makes the WHEP requests (default http.DefaultClient).
	HTTPClient *http.Client
	// Header is added to every request (credentials).
	Header http.Header
	// Video receives the video as an Annex-B H.264 stream starting at the
	// first keyframe; nil discards it.
	Video io.Writer
	// Audio receives the audio as Ogg/Opus; nil discards it.
	Audio io.Writer
	// Conn, when set, is the one UDP socket the viewer receives on (ICE
	// mux); by default pion opens its own.
	Conn net.PacketConn
	// Frames, when not 0, ends the viewing once this many complete video
	// frames have arrived, before ctx ends.
	Frames uint64
	// Talk, when set, answers a doorbell call (the endpoint is the call's
	// answer URL, docs/calls.md): the audio is sendrecv and Talk fills
	// each 20 ms of 48 kHz mono PCM that is sent to the camera's speaker
	// (as PCMU).
	Talk func(pcm []int16)
	// PCM, when set, asks for the camera's audio as G.711 (PCMU, the
	// only audio codec offered: a call's answer, since live view sends
	// Opus only) and receives it decoded, 48 kHz mono 16-bit, a packet's
	// block at a time, on the track's goroutine. Audio gets nothing then.
	PCM func(pcm []int16)
	// OnVideo, when set, receives each complete video access unit
	// (Annex-B) from the first keyframe on, with its RTP timestamp
	// (90 kHz) and whether it is an IDR; OnAudio each Opus packet with its
	// RTP timestamp (48 kHz). They are called on the receiving goroutines
	// and must not keep au or payload past the call. An NVR records a
	// camd camera through them, without re-encoding.
	OnVideo func(au []byte, rtpTime uint32, key bool)
	OnAudio func(payload []byte, rtpTime uint32)
	Logger  *slog.Logger
}

// ErrRefused is wrapped by View's error when the endpoint answered 401
// or 403: the credential is unknown or revoked.
var ErrRefused = errors.New("whep: credential refused")

// ViewStats is what a viewer saw.
type ViewStats struct {
	// FirstFrame is the time from the POST to the first complete keyframe.
	FirstFrame time.Duration
	// Connected is the time from the POST to ICE and DTLS being connected.
	Connected time.Duration
	// FramesReceived counts complete video frames; FramesLost counts
	// frames of which some packet had not arrived repairWindow after
	// the first, up to when the viewer left (a frame cut short by the
	// leaving is not lost).
	FramesReceived, FramesLost, KeyFrames uint64
	AudioPackets                          uint64
	Width, Height                         int
}

// View watches the WHEP endpoint at endpoint until ctx ends (or
// opts.Frames have arrived), then leaves with DELETE. It fails if no
// connection is made or no frame arrives.
func View(ctx context.Context, endpoint string, opts ViewOptions) (ViewStats, error) {
	if opts.HTTPClient == nil {
		opts.HTTPClient = http.DefaultClient
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	m := &webrtc.MediaEngine{}
	if opts.PCM != nil {
		if err := registerG711Only(m); err != nil {
			return ViewStats{}, err
		}
	} else if err := m.RegisterDefaultCodecs(); err != nil {
		return ViewStats{}, err
	}
	reg := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, reg); err != nil {
		return ViewStats{}, err
	}
	logs := newPionLogs(opts.Logger)
	se := webrtc.SettingEngine{LoggerFactory: logs}
	se.SetIncludeLoopbackCandidate(true)
	if opts.Conn != nil {
		se.SetICEUDPMux(webrtc.NewICEUDPMux(logs.NewLogger("ice-mux"), opts.Conn))
	}
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
	api := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg), webrtc.WithSettingEngine(se))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return ViewStats{}, err
	}
	defer pc.Close()
	kinds := []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio}
	var talk *webrtc.TrackLocalStaticSample
	if opts.Talk != nil {
		kinds = kinds[:1]
		if talk, err = addTalk(pc); err != nil {
			return ViewStats{}, err
		}
	}
	for _, k := range kinds {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			return ViewStats{}, err
		}
	}

	v := &viewer{opts: opts, enough: make(chan struct{})}
	connected := make(chan struct{})
	failed := make(chan struct{})
	var once, connectOnce sync.Once
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		opts.Logger.Debug("whep: viewer connection", "state", s)
		switch s {
		case webrtc.PeerConnectionStateConnected:
			// Connected again after "disconnected": the first counts.
			connectOnce.Do(func() {
				v.mu.Lock()
				v.stats.Connected = time.Since(v.posted)
				v.mu.Unlock()
				close(connected)
			})
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			once.Do(func() { close(failed) })
		}
	})
	var wg sync.WaitGroup
	pc.OnTrack(func(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v.read(t)
		}()
	})

	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return ViewStats{}, err
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		return ViewStats{}, err
	}
	<-gathered

	v.posted = time.Now()
	location, answer, err := post(ctx, opts, endpoint, pc.LocalDescription().SDP)
	if err != nil {
		return ViewStats{}, err
	}
	leave := sync.OnceFunc(func() {
		dctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(dctx, http.MethodDelete, location, nil)
		for k, vs := range opts.Header {
			req.Header[k] = vs
		}
		if resp, err := opts.HTTPClient.Do(req); err == nil {
			resp.Body.Close()
		}
	})
	defer leave()
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		return ViewStats{}, fmt.Errorf("whep: bad answer: %w", err)
	}

	select {
	case <-connected:
	case <-failed:
		return v.result(), errors.New("whep: connection failed")
	case <-ctx.Done():
		return v.result(), errors.New("whep: did not connect in time")
	}
	talkCtx, stopTalk := context.WithCancel(ctx)
	defer stopTalk()
	if talk != nil {
		wg.Go(func() { sendTalk(talkCtx, talk, opts.Talk) })
	}
	select {
	case <-ctx.Done():
	case <-failed:
	case <-v.enough:
	}
	stopTalk()
	v.leave(time.Now())
	// DELETE before the connection closes: a call's camd hears that the
	// phone hung up, not that its connection closed.
	leave()
	pc.Close()
	wg.Wait()
	v.finish()
	st := v.result()
	if st.FramesReceived == 0 {
		return st, errors.New("whep: no video frame received")
	}
	return st, nil
}

// post sends the offer and returns the session URL and the answer.
func post(ctx context.Context, opts ViewOptions, endpoint, offer string) (string, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(offer))
	if err != nil {
		return "", "", err
	}
	for k, vs := range opts.Header {
		req.Header[k] = vs
	}
	req.Header.Set("Content-Type", ContentTypeSDP)
	resp, err := opts.HTTPClient.Do(req)
	if err != nil {
		return "", "", fmt.Errorf("whep: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, MaxBody))
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		return "", "", fmt.Errorf("%w: %s: %s", ErrRefused, resp.Status, strings.TrimSpace(string(body)))
	}
	if resp.StatusCode != http.StatusCreated {
		return "", "", fmt.Errorf("whep: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	loc, err := resp.Location()
	if err != nil {
		return "", "", fmt.Errorf("whep: answer without Location: %w", err)
	}
	base, _ := url.Parse(endpoint)
	return base.ResolveReference(loc).String(), string(body), nil
}

type viewer struct {
	opts   ViewOptions
	posted time.Time

	enough chan struct{} // closed when opts.Frames have arrived

	mu      sync.Mutex
	stats   ViewStats
	started bool // video output began at a keyframe
	// left is when the viewer decided to leave: a frame cut short by
	// the leaving (the DELETE and the close can take longer than
	// repairWindow on a busy machine) is not counted lost.
	left time.Time
	ogg  *oggwriter.OggWriter
}

func (v *viewer) result() ViewStats {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.stats
}

func (v *viewer) read(t *webrtc.TrackRemote) {
	switch t.Kind() {
	case webrtc.RTPCodecTypeVideo:
		v.readVideo(t)
	case webrtc.RTPCodecTypeAudio:
		v.readAudio(t)
	}
}

func (v *viewer) readVideo(t *webrtc.TrackRemote) {
	a := &assembler{onFrame: v.frame}
	defer func() {
		v.mu.Lock()
		now := time.Now()
		if !v.left.IsZero() {
			now = v.left
		}
		v.stats.FramesLost = a.lost + a.pendingLost(now)
		v.mu.Unlock()
	}()
	for {
		p, _, err := t.ReadRTP()
		if err != nil {
			return
		}
		a.push(p, time.Now())
	}
}

// frame takes one complete access unit in Annex-B form.
func (v *viewer) frame(au []byte, ts uint32) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.stats.FramesReceived++
	if v.stats.FramesReceived == v.opts.Frames {
		close(v.enough)
	}
	key := false
	var nalus mch264.AnnexB
	if err := nalus.Unmarshal(au); err == nil {
		for _, n := range nalus {
			if len(n) == 0 {
				continue
			}
			switch mch264.NALUType(n[0] & 0x1f) {
			case mch264.NALUTypeIDR:
				key = true
			case mch264.NALUTypeSPS:
				var sps mch264.SPS
				if sps.Unmarshal(n) == nil {
					v.stats.Width, v.stats.Height = sps.Width(), sps.Height()
				}
			}
		}
	}
	if key {
		v.stats.KeyFrames++
		if v.stats.FirstFrame == 0 {
			v.stats.FirstFrame = time.Since(v.posted)
		}
		v.started = true
	}
	if v.started && v.opts.Video != nil {
		if !bytes.HasPrefix(au, []byte{0, 0, 0, 1}) && !bytes.HasPrefix(au, []byte{0, 0, 1}) {
			v.opts.Video.Write([]byte{0, 0, 0, 1})
		}
		v.opts.Video.Write(au)
	}
	if v.started && v.opts.OnVideo != nil {
		v.opts.OnVideo(au, ts, key)
	}
}

// registerG711Only registers H.264 (packetization mode 1) for video and
// PCMU alone for audio: a viewer that asks for G.711.
func registerG711Only(m *webrtc.MediaEngine) error {
	h264 := webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
			SDPFmtpLine:  "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
			RTCPFeedback: []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}},
		},
		PayloadType: 102,
	}
	if err := m.RegisterCodec(h264, webrtc.RTPCodecTypeVideo); err != nil {
		return err
	}
	pcmu := webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: g711.Rate}, PayloadType: 0}
	return m.RegisterCodec(pcmu, webrtc.RTPCodecTypeAudio)
}

func (v *viewer) readAudio(t *webrtc.TrackRemote) {
	if v.opts.PCM != nil && strings.EqualFold(t.Codec().MimeType, webrtc.MimeTypePCMU) {
		var dec g711.Decoder
		var pcm []int16
		for {
			p, _, err := t.ReadRTP()
			if err != nil {
				return
			}
			v.audio(p)
			pcm = dec.Decode(pcm[:0], p.Payload)
			v.opts.PCM(pcm)
		}
	}
	var ogg *oggwriter.OggWriter
	if v.opts.Audio != nil {
		var err error
		ogg, err = oggwriter.NewWith(v.opts.Audio, 48000, t.Codec().Channels)
		if err != nil {
			v.opts.Logger.Warn("whep: ogg writer", "err", err)
		}
	}
	v.mu.Lock()
	v.ogg = ogg
	v.mu.Unlock()
	for {
		p, _, err := t.ReadRTP()
		if err != nil {
			return
		}
		v.audio(p)
	}
}

func (v *viewer) audio(p *rtp.Packet) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.stats.AudioPackets++
	if v.opts.OnAudio != nil && len(p.Payload) > 0 {
		v.opts.OnAudio(p.Payload, p.Timestamp)
	}
	if v.ogg != nil {
		v.ogg.WriteRTP(p)
	}
}

// repairWindow is how long a frame may wait for retransmissions before
// it counts as lost.
const repairWindow = 500 * time.Millisecond

// leave records when the viewer decided to leave.
func (v *viewer) leave(now time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.left = now
}

// finish closes the audio file.
func (v *viewer) finish() {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.ogg != nil {
		v.ogg.Close()
	}
}
