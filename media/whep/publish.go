package whep

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/webrtc/v4"

	"github.com/camd-project/camd/media"
)

// Errors of a publish (Publisher).
var (
	// ErrPublishURL is a WHIP endpoint that is not an http or https URL.
	ErrPublishURL = errors.New("whep: the WHIP endpoint must be an http:// or https:// URL")
	// ErrUnauthorized is a WHIP endpoint that refused the token (401 or
	// 403): the publisher does not try again until it is given another.
	ErrUnauthorized = errors.New("whep: the WHIP endpoint refused the token")
	// ErrPublishAnswer is a WHIP endpoint whose answer camd cannot use.
	ErrPublishAnswer = errors.New("whep: unusable answer from the WHIP endpoint")
)

// PublishOptions configure a Publisher. The zero value of each field
// means its default, except URL, which is required.
type PublishOptions struct {
	// URL is the WHIP endpoint (RFC 9725). Only its scheme and host are
	// ever logged or shown: the path of a cloud SFU's endpoint often
	// holds a stream key.
	URL string
	// Token is sent as "Authorization: Bearer" on every request. It is
	// never logged.
	Token string
	// HTTPClient makes the WHIP requests (default: a client with a 15 s
	// timeout that verifies certificates with the system's roots, or by
	// PinSHA256).
	HTTPClient *http.Client
	// PinSHA256, when set, is the SHA-256 of the endpoint's certificate
	// (DER): an SFU with a self-signed certificate. Only that certificate
	// is accepted, and the chain is not checked.
	PinSHA256 []byte
	// Certificate is the DTLS certificate (default: one made for each
	// connection).
	Certificate *webrtc.Certificate
	// IncludeLoopback offers loopback candidates (an SFU on the same
	// host).
	IncludeLoopback bool
	// ConnectTimeout bounds the time from the answer to ICE and DTLS
	// being connected (default 10 s).
	ConnectTimeout time.Duration
	// MinBackoff and MaxBackoff bound the pause before the next attempt
	// after a failure (defaults 1 s and 60 s): it doubles with each
	// failure in a row, with ±20 % jitter, and starts again from
	// MinBackoff after a publish that lasted StableAfter. A Retry-After
	// from the endpoint lengthens it, up to MaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// StableAfter is how long a publish must last for the failures
	// before it to be forgotten (default 30 s).
	StableAfter time.Duration
	// QueueFrames bounds the publish's queue on the hub (default: the
	// hub's).
	QueueFrames int
	// ReplayBitrate paces the cached group of pictures a passthrough
	// stream starts with (default 20 Mbps).
	ReplayBitrate int
	// OnChange is told of each change of state, on the publisher's
	// goroutine, in order.
	OnChange func(PublishStatus)
	Logger   *slog.Logger
}

func (o *PublishOptions) defaults() {
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 15 * time.Second}
		if len(o.PinSHA256) > 0 {
			tr := http.DefaultTransport.(*http.Transport).Clone()
			tr.TLSClientConfig = &tls.Config{
				InsecureSkipVerify: true, // VerifyConnection checks the pin instead
				VerifyConnection:   pinned(o.PinSHA256),
			}
			o.HTTPClient.Transport = tr
		}
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 10 * time.Second
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = time.Minute
	}
	o.MaxBackoff = max(o.MaxBackoff, o.MinBackoff)
	if o.StableAfter <= 0 {
		o.StableAfter = 30 * time.Second
	}
	if o.ReplayBitrate <= 0 {
		o.ReplayBitrate = 20_000_000
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// ErrPin is an endpoint whose certificate is not the pinned one.
var ErrPin = errors.New("whep: the WHIP endpoint's certificate is not the pinned one")

// pinned checks that a TLS peer's certificate has the SHA-256 pin.
func pinned(pin []byte) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return ErrPin
		}
		sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
		if subtle.ConstantTimeCompare(sum[:], pin) != 1 {
			return fmt.Errorf("%w (it is %x)", ErrPin, sum)
		}
		return nil
	}
}

// PublishState is what a publisher is doing.
type PublishState string

// A publisher's states.
const (
	// PublishConnecting: an attempt is under way (OPTIONS, offer, ICE,
	// DTLS).
	PublishConnecting PublishState = "connecting"
	// Publishing: the endpoint receives the stream.
	Publishing PublishState = "publishing"
	// PublishRetrying: the last attempt failed or the publish broke; the
	// next attempt is at NextAttempt.
	PublishRetrying PublishState = "retrying"
	// PublishRefused: the endpoint refused the token (ErrUnauthorized);
	// no attempt is made until the publisher is replaced.
	PublishRefused PublishState = "refused"
	// PublishStopped: Run has returned.
	PublishStopped PublishState = "stopped"
)

// PublishStatus describes a publisher.
type PublishStatus struct {
	State PublishState
	// Endpoint is the URL's scheme and host.
	Endpoint string
	// Since is when the state began.
	Since time.Time
	// Error is the last failure (kept while publishing again after it).
	Error string
	// Failures counts the failures in a row.
	Failures int
	// NextAttempt is when a retrying publisher tries again.
	NextAttempt time.Time
	// Connected is when the current or last publish connected.
	Connected time.Time
	// Frames counts the video frames sent, over every attempt; Packets
	// and Resent the video RTP packets; PLIs and NACKs the endpoint's
	// requests.
	Frames, Packets, Resent, PLIs, NACKs uint64
}

// Publisher publishes a hub's stream to a WHIP endpoint (RFC 9725) as
// one more consumer of the hub, from a fresh keyframe: one connection at
// a time, made again with capped exponential backoff when it fails or
// breaks, and ended with DELETE on the session resource when Run
// returns. The ICE servers (STUN, TURN) are those the endpoint names in
// Link headers, asked with OPTIONS before each offer and kept from each
// answer. The offer carries every candidate (no trickle).
type Publisher struct {
	opts     PublishOptions
	hub      source
	api      *webrtc.API
	endpoint string // scheme://host

	mu      sync.Mutex
	st      PublishStatus
	servers []webrtc.ICEServer // from the last Link headers
	// counters of the attempts that ended
	frames, packets, resent, plis, nacks uint64
	cur                                  *publish
}

// NewPublisher returns a publisher of h's stream to opts.URL; Run
// publishes.
func NewPublisher(h source, opts PublishOptions) (*Publisher, error) {
	u, err := url.Parse(opts.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return nil, ErrPublishURL
	}
	if len(opts.PinSHA256) != 0 && (len(opts.PinSHA256) != sha256.Size || u.Scheme != "https") {
		return nil, fmt.Errorf("%w: a pin is the 32-byte SHA-256 of an https:// endpoint's certificate", ErrPin)
	}
	opts.defaults()
	api, err := newPublishAPI(opts)
	if err != nil {
		return nil, err
	}
	p := &Publisher{opts: opts, hub: h, api: api, endpoint: u.Scheme + "://" + u.Host}
	p.st = PublishStatus{State: PublishConnecting, Endpoint: p.endpoint, Since: time.Now()}
	return p, nil
}

// newPublishAPI is pion's API for a publish: camd's codecs, sender
// reports and transport-wide sequence numbers for the endpoint's
// estimates; NACKs are answered from the video track's history.
func newPublishAPI(opts PublishOptions) (*webrtc.API, error) {
	m, err := newMediaEngine()
	if err != nil {
		return nil, fmt.Errorf("whep: media engine: %w", err)
	}
	reg := &interceptor.Registry{}
	sr, err := report.NewSenderInterceptor()
	if err != nil {
		return nil, err
	}
	reg.Add(sr)
	hdr, err := twcc.NewHeaderExtensionInterceptor()
	if err != nil {
		return nil, err
	}
	reg.Add(hdr)
	logs := newPionLogs(opts.Logger)
	se := webrtc.SettingEngine{LoggerFactory: logs}
	se.SetIncludeLoopbackCandidate(opts.IncludeLoopback)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	// A vanished endpoint is noticed within about 10 s.
	se.SetICETimeouts(4*time.Second, 6*time.Second, 2*time.Second)
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg), webrtc.WithSettingEngine(se)), nil
}

// Status returns what the publisher is doing and its counters.
func (p *Publisher) Status() PublishStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.st
	st.Frames, st.Packets, st.Resent, st.PLIs, st.NACKs = p.frames, p.packets, p.resent, p.plis, p.nacks
	if p.cur != nil {
		// close moves a connection's counters here under p.mu: counted once.
		c := p.cur.counters()
		st.Frames += c.frames
		st.Packets += c.packets
		st.Resent += c.resent
		st.PLIs += c.plis
		st.NACKs += c.nacks
	}
	return st
}

// set changes the state and tells OnChange.
func (p *Publisher) set(f func(st *PublishStatus)) {
	p.mu.Lock()
	before := p.st.State
	f(&p.st)
	if p.st.State != before {
		p.st.Since = time.Now()
	}
	p.mu.Unlock()
	if p.opts.OnChange != nil {
		p.opts.OnChange(p.Status())
	}
}

// Run publishes until ctx ends, then ends the session with DELETE and
// returns nil. It returns an error only if the publisher cannot run at
// all.
func (p *Publisher) Run(ctx context.Context) error {
	defer p.set(func(st *PublishStatus) { st.State, st.NextAttempt = PublishStopped, time.Time{} })
	failures := 0
	for {
		p.set(func(st *PublishStatus) { st.State, st.NextAttempt = PublishConnecting, time.Time{} })
		lasted, retryAfter, err := p.attempt(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if lasted >= p.opts.StableAfter {
			failures = 0
		}
		failures++
		msg := err.Error()
		if errors.Is(err, ErrUnauthorized) {
			p.opts.Logger.Warn("whep: WHIP publish refused; not trying again until the token changes", "endpoint", p.endpoint, "err", msg)
			p.set(func(st *PublishStatus) { st.State, st.Error, st.Failures = PublishRefused, msg, failures })
			<-ctx.Done()
			return nil
		}
		wait := backoff(p.opts.MinBackoff, p.opts.MaxBackoff, failures)
		if retryAfter > wait {
			wait = min(retryAfter, p.opts.MaxBackoff)
		}
		p.opts.Logger.Warn("whep: WHIP publish failed; trying again", "endpoint", p.endpoint, "err", msg, "failures", failures, "in", wait.Round(time.Millisecond))
		next := time.Now().Add(wait)
		p.set(func(st *PublishStatus) {
			st.State, st.Error, st.Failures, st.NextAttempt = PublishRetrying, msg, failures, next
		})
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// backoff is the pause after n failures in a row: lo doubled n-1 times,
// at most hi, with ±20 % jitter.
func backoff(lo, hi time.Duration, n int) time.Duration {
	d := lo
	for i := 1; i < n && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	jitter := time.Duration(rand.Int64N(int64(d)/5*2+1)) - d/5
	return d + jitter
}

// attempt makes one publish and keeps it up until it breaks or ctx
// ends. It returns how long it was connected, the endpoint's Retry-After
// and why it ended (nil once ctx ended).
func (p *Publisher) attempt(ctx context.Context) (time.Duration, time.Duration, error) {
	if err := p.options(ctx); err != nil {
		return 0, 0, err
	}
	p.mu.Lock()
	servers := p.servers
	p.mu.Unlock()
	cfg := webrtc.Configuration{
		ICEServers:    servers,
		BundlePolicy:  webrtc.BundlePolicyMaxBundle,
		RTCPMuxPolicy: webrtc.RTCPMuxPolicyRequire,
	}
	if p.opts.Certificate != nil {
		cfg.Certificates = []webrtc.Certificate{*p.opts.Certificate}
	}
	pc, err := p.api.NewPeerConnection(cfg)
	if err != nil {
		return 0, 0, fmt.Errorf("whep: %w", err)
	}
	pub := &publish{p: p, pc: pc, states: make(chan webrtc.PeerConnectionState, 8)}
	defer pub.close()
	p.mu.Lock()
	p.cur = pub
	p.mu.Unlock()
	return pub.run(ctx)
}

// options asks the endpoint for its ICE servers (OPTIONS): a refused
// token fails at once; an endpoint that does not answer OPTIONS keeps
// the servers of its last answer.
func (p *Publisher) options(ctx context.Context) error {
	resp, err := p.do(ctx, http.MethodOptions, p.opts.URL, "", nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return fmt.Errorf("%w (%s)", ErrUnauthorized, resp.Status)
	case resp.StatusCode/100 == 2:
		if s := parseICEServerLinks(resp.Header.Values("Link")); len(s) > 0 {
			p.mu.Lock()
			p.servers = s
			p.mu.Unlock()
		}
	}
	return nil
}

// do makes one request of the endpoint with the token. Its errors name
// the endpoint's scheme and host only.
func (p *Publisher) do(ctx context.Context, method, target, contentType string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrPublishURL, err)
	}
	if p.opts.Token != "" {
		req.Header.Set("Authorization", "Bearer "+p.opts.Token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := p.opts.HTTPClient.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("whep: %s %s: %w", method, p.endpoint, err)
	}
	return resp, nil
}

// publish is one connection to the endpoint.
type publish struct {
	p        *Publisher
	pc       *webrtc.PeerConnection
	states   chan webrtc.PeerConnectionState
	resource string // the session's URL, once created
	video    *track
	consumer *media.Consumer
	wg       sync.WaitGroup

	mu      sync.Mutex
	frames  uint64
	plis    uint64
	nacks   uint64
	lastPLI time.Time
}

type publishCounters struct{ frames, packets, resent, plis, nacks uint64 }

func (pub *publish) counters() publishCounters {
	pub.mu.Lock()
	c := publishCounters{frames: pub.frames, plis: pub.plis, nacks: pub.nacks}
	video := pub.video
	pub.mu.Unlock()
	if video != nil {
		c.packets, c.resent = video.counters()
	}
	return c
}

// run negotiates with the endpoint, then sends until the connection
// breaks or ctx ends.
func (pub *publish) run(ctx context.Context) (time.Duration, time.Duration, error) {
	p, pc := pub.p, pub.pc
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		select {
		case pub.states <- st:
		default: // run reads every state it needs; a burst keeps the first
		}
	})
	prof := streamProfile(p.hub)
	video, audio := newTrack(webrtc.RTPCodecTypeVideo, prof), (*track)(nil)
	tracks := []*track{video}
	// An audio track only when the source has sound: an SFU waits for
	// every track it was offered before it serves the stream (MediaMTX:
	// 2 s).
	if p.hub.Info().Audio {
		audio = newTrack(webrtc.RTPCodecTypeAudio, prof)
		tracks = append(tracks, audio)
	}
	pub.mu.Lock()
	pub.video = video
	pub.mu.Unlock()
	var senders []*webrtc.RTPSender
	for _, t := range tracks {
		tr, err := pc.AddTransceiverFromTrack(t, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			return 0, 0, fmt.Errorf("whep: %s track: %w", t.kind, err)
		}
		senders = append(senders, tr.Sender())
	}
	if err := narrowCodecs(pc, prof); err != nil {
		return 0, 0, fmt.Errorf("whep: %w", err)
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return 0, 0, fmt.Errorf("whep: offer: %w", err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		return 0, 0, fmt.Errorf("whep: offer: %w", err)
	}
	gatherLimit := time.NewTimer(5 * time.Second) // TURN allocations; host candidates are at once
	defer gatherLimit.Stop()
	select {
	case <-gathered:
	case <-gatherLimit.C: // offer what was gathered
	case <-ctx.Done():
		return 0, 0, ctx.Err()
	}
	answer, retryAfter, err := pub.post(ctx, pc.LocalDescription().SDP)
	if err != nil {
		return 0, retryAfter, err
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		return 0, 0, fmt.Errorf("%w: %v", ErrPublishAnswer, err)
	}
	for _, snd := range senders {
		pub.wg.Go(func() {
			readRTCP(snd, video, nil, func() {
				pub.mu.Lock()
				pub.nacks++
				pub.mu.Unlock()
			}, pub.keyframe)
		})
	}

	connect := time.NewTimer(p.opts.ConnectTimeout)
	defer connect.Stop()
	for connected := false; !connected; {
		select {
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		case <-connect.C:
			return 0, 0, fmt.Errorf("whep: no connection to %s within %s (ICE and DTLS)", p.endpoint, p.opts.ConnectTimeout)
		case st := <-pub.states:
			switch st {
			case webrtc.PeerConnectionStateConnected:
				connected = true
			case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
				return 0, 0, fmt.Errorf("whep: connection to %s %s", p.endpoint, st)
			}
		}
	}

	// From a fresh keyframe: the hub asks an encoding source for one.
	c := p.hub.Subscribe(media.ConsumerOptions{Name: "whip", QueueFrames: p.opts.QueueFrames})
	pub.mu.Lock()
	pub.consumer = c
	pub.mu.Unlock()
	since := time.Now()
	p.opts.Logger.Info("whep: WHIP publish connected", "endpoint", p.endpoint)
	p.set(func(st *PublishStatus) { st.State, st.Connected, st.Failures = Publishing, since, 0 })
	sendCtx, stop := context.WithCancel(ctx)
	sent := make(chan error, 1)
	pub.wg.Go(func() {
		sent <- forward(sendCtx, c, video, audio, nil, p.opts.ReplayBitrate, func(*media.Frame, bool) {
			pub.mu.Lock()
			pub.frames++
			pub.mu.Unlock()
		})
	})
	defer stop()
	for {
		select {
		case <-ctx.Done():
			return time.Since(since), 0, ctx.Err()
		case err := <-sent:
			if errors.Is(err, media.ErrClosed) {
				err = errors.New("whep: the stream ended")
			}
			return time.Since(since), 0, err
		case st := <-pub.states:
			if st == webrtc.PeerConnectionStateFailed || st == webrtc.PeerConnectionStateClosed {
				return time.Since(since), 0, fmt.Errorf("whep: connection to %s %s", p.endpoint, st)
			}
		}
	}
}

// post sends the offer and returns the answer, keeping the session's
// URL and the ICE servers of the Link headers.
func (pub *publish) post(ctx context.Context, offer string) (string, time.Duration, error) {
	p := pub.p
	resp, err := p.do(ctx, http.MethodPost, p.opts.URL, ContentTypeSDP, strings.NewReader(offer))
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, MaxBody))
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return "", 0, fmt.Errorf("%w (%s)", ErrUnauthorized, resp.Status)
	case resp.StatusCode != http.StatusCreated:
		said := strings.TrimSpace(string(body))
		if p.opts.Token != "" {
			said = strings.ReplaceAll(said, p.opts.Token, "(token)") // an SFU that echoes the request
		}
		return "", retryAfter(resp.Header.Get("Retry-After")), fmt.Errorf("whep: %s answered the offer with %s: %s",
			p.endpoint, resp.Status, truncate(said, 200))
	}
	loc, err := resp.Location()
	if err != nil {
		return "", 0, fmt.Errorf("%w: 201 without Location", ErrPublishAnswer)
	}
	pub.resource = loc.String() // resolved against the URL that answered
	if s := parseICEServerLinks(resp.Header.Values("Link")); len(s) > 0 {
		p.mu.Lock()
		p.servers = s
		p.mu.Unlock()
	}
	return string(body), 0, nil
}

// retryAfter reads a Retry-After header given in seconds (0 otherwise).
func retryAfter(v string) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n <= 0 {
		return 0
	}
	return time.Duration(min(n, 3600)) * time.Second
}

// keyframe answers the endpoint's PLI or FIR, at most once a pliGap.
func (pub *publish) keyframe() {
	pub.mu.Lock()
	c := pub.consumer
	pub.plis++
	now := time.Now()
	if c == nil || now.Sub(pub.lastPLI) < pliGap {
		pub.mu.Unlock()
		return
	}
	pub.lastPLI = now
	pub.mu.Unlock()
	c.RequestKeyframe()
}

// close ends the connection: the session resource is deleted, the
// consumer and the peer connection closed, and the counters kept.
func (pub *publish) close() {
	p := pub.p
	pub.mu.Lock()
	c := pub.consumer
	pub.mu.Unlock()
	if c != nil {
		c.Close()
	}
	if pub.resource != "" {
		pub.delete()
	}
	pub.pc.Close()
	pub.wg.Wait()
	p.mu.Lock()
	cnt := pub.counters()
	p.cur = nil
	p.frames += cnt.frames
	p.packets += cnt.packets
	p.resent += cnt.resent
	p.plis += cnt.plis
	p.nacks += cnt.nacks
	p.mu.Unlock()
}

// delete ends the session resource (RFC 9725 section 4.2), within a few
// seconds whatever the publisher's context.
func (pub *publish) delete() {
	p := pub.p
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	resp, err := p.do(ctx, http.MethodDelete, pub.resource, "", nil)
	if err != nil {
		p.opts.Logger.Debug("whep: WHIP session not deleted", "endpoint", p.endpoint, "err", err)
		return
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		p.opts.Logger.Debug("whep: WHIP session not deleted", "endpoint", p.endpoint, "status", resp.Status)
	}
}
