package whep

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/pion/interceptor/pkg/cc"
	"github.com/pion/webrtc/v4"

	"github.com/camd-project/camd/media"
)

// MaxBody is the largest SDP offer or trickle fragment accepted.
const MaxBody = 64 << 10

// Content types of WHEP (draft-ietf-wish-whep, which takes them from
// WHIP, RFC 9725).
const (
	ContentTypeSDP  = "application/sdp"
	ContentTypeFrag = "application/trickle-ice-sdpfrag"
)

// source is what a session needs of a media hub.
type source interface {
	Subscribe(media.ConsumerOptions) *media.Consumer
	Info() media.SourceInfo
}

// hub is what the server needs of the live stream's media hub.
type hub interface {
	source
	SetTargetBitrate(bps int)
}

// Feed is a stream other than the live one that a session can play: a
// recording played back. Its viewers' bandwidth estimates do not steer the
// live encoder, and the viewer limit counts them like live viewers. The
// session ends when the feed's hub is closed.
type Feed struct {
	// Hub carries the feed's frames (*media.Hub).
	Hub source
	// Start is called once, when the viewer is connected: the feed
	// should begin publishing then, so that the viewer sees it from the
	// start and in real time.
	Start func()
	// Stopped is called once the session ends, for whatever reason, or
	// when no session could be made.
	Stopped func()
}

// Options configure a Server. The zero value of each field means its
// default, except Conn, which is required.
type Options struct {
	// Conn is the one UDP socket that every session's ICE shares.
	Conn net.PacketConn
	// Certificate is the DTLS certificate. Persist it: generating one costs
	// time on every connection and changes the fingerprint.
	Certificate *webrtc.Certificate
	// MaxViewers bounds concurrent sessions, live and playback (default
	// 16). Beyond it a POST gets 503 with Retry-After. The last slot is
	// kept for an owner: a viewer who is not one gets 503 when only that
	// slot is left.
	MaxViewers int
	// MaxViewersPerUser bounds one user's concurrent sessions (default 4),
	// counting offers that have not connected yet until the ICE timeout
	// frees them: a user who floods offers fills only their own slots.
	// Beyond it the user's POST gets 503 with Retry-After.
	MaxViewersPerUser int
	// User names the user who made a request and says whether they are
	// an owner. A session belongs to the user who offered it: another
	// user's PATCH or DELETE on it gets 404, as if it did not exist.
	// Nil: every request comes from one anonymous owner, and
	// MaxViewersPerUser does not apply.
	User func(*http.Request) (id string, owner bool)
	// RemoteAccess lets a session's connectivity checks go to candidates
	// of any scope. Off (the default), camd checks only candidates of the
	// address family and scope (loopback, link-local, private, shared,
	// public) of the request that carried them: a client on the LAN
	// cannot make camd send STUN to addresses on the Internet.
	RemoteAccess bool
	// ICETimeout frees a session that has not connected, or whose ICE has
	// failed, after this long (default 10 s).
	ICETimeout time.Duration
	// Bitrate bounds, in bits per second, within which viewers' bandwidth
	// estimates steer the encoder (defaults 300 kbps, 4 Mbps; start 2 Mbps).
	MinBitrate, MaxBitrate, StartBitrate int
	// IncludeLoopback offers loopback candidates; set it when the daemon
	// listens on loopback.
	IncludeLoopback bool
	// ReplayBitrate paces the cached group of pictures that a viewer of a
	// passthrough source starts with, in bits per second (default 20 Mbps).
	ReplayBitrate int
	// QueueFrames bounds each viewer's queue (default: the hub's).
	QueueFrames int
	// ICEServers are the STUN and TURN servers offered to viewers in
	// Link headers (rel="ice-server") of the 201 answer and of an OPTIONS
	// request from a paired user. camd itself uses none: it answers with
	// its own host candidates.
	ICEServers []webrtc.ICEServer
	Logger     *slog.Logger
}

func (o *Options) defaults() {
	if o.MaxViewers <= 0 {
		o.MaxViewers = 16
	}
	if o.MaxViewersPerUser <= 0 {
		o.MaxViewersPerUser = 4
	}
	if o.ICETimeout <= 0 {
		o.ICETimeout = 10 * time.Second
	}
	if o.MinBitrate <= 0 {
		o.MinBitrate = 300_000
	}
	if o.MaxBitrate <= 0 {
		o.MaxBitrate = 4_000_000
	}
	if o.StartBitrate <= 0 {
		o.StartBitrate = min(2_000_000, o.MaxBitrate)
	}
	if o.ReplayBitrate <= 0 {
		o.ReplayBitrate = 20_000_000
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Server answers WHEP requests and runs the viewer sessions.
type Server struct {
	opts Options
	hub  hub
	eng  *engine
	log  *slog.Logger

	newPC sync.Mutex // pairs each peer connection with its estimator

	mu       sync.Mutex
	sessions map[string]*session
	held     int // viewer slots held outside the server (SetHeld)
	closed   bool
	latency  latencyRing
	served   uint64
	refused  uint64
	// nacks and plis sum the counters of the sessions that ended.
	nacks, plis uint64

	// fan sends the live stream to its viewers; its shards run from
	// their first viewer until stop is closed.
	fan  *fanout
	stop chan struct{}

	wg sync.WaitGroup
}

// NewServer returns a server for the hub's stream.
func NewServer(h hub, opts Options) (*Server, error) {
	if opts.Conn == nil {
		return nil, errors.New("whep: Options.Conn is required")
	}
	opts.defaults()
	if opts.Certificate == nil {
		return nil, errors.New("whep: Options.Certificate is required")
	}
	eng, err := newEngine(engineOptions{
		conn:            opts.Conn,
		includeLoopback: opts.IncludeLoopback,
		iceTimeout:      opts.ICETimeout,
		minBitrate:      opts.MinBitrate,
		maxBitrate:      opts.MaxBitrate,
		startBitrate:    opts.StartBitrate,
		logger:          opts.Logger,
	})
	if err != nil {
		return nil, err
	}
	return newServer(h, opts, eng), nil
}

// newServer returns a server on eng; opts has its defaults.
func newServer(h hub, opts Options, eng *engine) *Server {
	return &Server{opts: opts, hub: h, eng: eng, log: opts.Logger, sessions: make(map[string]*session),
		fan: newFanout(eng.batch, opts.ReplayBitrate), stop: make(chan struct{})}
}

// shard picks the fan-out shard for a new live viewer (fanout.pick) and
// starts its goroutine the first time; nil once the server is closed.
func (s *Server) shard() *shard {
	s.mu.Lock()
	defer s.mu.Unlock()
	sh := s.fan.pick()
	if !sh.running {
		if !s.spawnLocked(func() { sh.run(s.stop) }) {
			sh.release()
			return nil
		}
		sh.running = true
	}
	return sh
}

// httpError writes a plain-text error.
func httpError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	io.WriteString(w, msg+"\n")
}

func readBody(w http.ResponseWriter, r *http.Request, contentType string) ([]byte, bool) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != contentType {
		httpError(w, http.StatusUnsupportedMediaType, "whep: Content-Type must be "+contentType)
		return nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			httpError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("whep: body over %d bytes", MaxBody))
		} else {
			httpError(w, http.StatusBadRequest, "whep: reading body: "+err.Error())
		}
		return nil, false
	}
	return body, true
}

// HandleOffer answers POST with an SDP offer: 201 Created with the answer
// and the session's Location (the request path + "/" + id).
func (s *Server) HandleOffer(w http.ResponseWriter, r *http.Request) {
	s.handleOffer(w, r, nil, nil)
}

// HandleFeedOffer answers an offer as HandleOffer does, with a session that
// plays feed instead of the live stream; HandlePatch and HandleDelete serve
// it too.
func (s *Server) HandleFeedOffer(w http.ResponseWriter, r *http.Request, feed Feed) {
	if stopped := feed.Stopped; stopped != nil {
		feed.Stopped = sync.OnceFunc(stopped) // a session that failed has called it already
	}
	if s.handleOffer(w, r, &feed, nil) == nil && feed.Stopped != nil {
		feed.Stopped()
	}
}

func (s *Server) handleOffer(w http.ResponseWriter, r *http.Request, feed *Feed, call *Call) *session {
	start := time.Now()
	body, ok := readBody(w, r, ContentTypeSDP)
	if !ok {
		return nil
	}
	info, err := checkOffer(body)
	if err == nil && call != nil {
		err = s.CheckCallOffer(body)
	}
	if err != nil {
		code := http.StatusUnprocessableEntity
		if errors.Is(err, ErrBadSDP) {
			code = http.StatusBadRequest
		}
		s.log.Info("whep: offer refused", "err", err, "remote", r.RemoteAddr)
		httpError(w, code, err.Error())
		return nil
	}
	offer, cands, dropped, err := s.filterFor(r).filterOffer(string(body))
	if err != nil {
		s.log.Info("whep: offer refused", "err", err, "remote", r.RemoteAddr)
		httpError(w, http.StatusBadRequest, err.Error())
		return nil
	}
	offer = trimOffer(offer)
	sess, err := s.reserve(feed, call, start, s.userOf(r))
	if err != nil {
		w.Header().Set("Retry-After", "5")
		httpError(w, http.StatusServiceUnavailable, err.Error())
		return nil
	}
	sess.mu.Lock()
	sess.cands = cands
	sess.mu.Unlock()
	if dropped > 0 {
		s.log.Debug("whep: offer's candidates dropped", "session", sess.id, "dropped", dropped, "of", len(cands), "remote", r.RemoteAddr)
	}
	answer, err := sess.start(r.Context(), offer, info)
	if err != nil {
		sess.close("offer failed")
		code := http.StatusBadRequest
		switch {
		case errors.Is(err, errInternal):
			code = http.StatusInternalServerError
		case errors.Is(err, errEnded):
			code = http.StatusServiceUnavailable
		}
		s.log.Info("whep: offer failed", "err", err, "remote", r.RemoteAddr)
		httpError(w, code, err.Error())
		return nil
	}
	s.log.Info("whep: viewer joined", "session", sess.id, "user", sess.user.id, "remote", r.RemoteAddr, "audio", info.audio, "feed", feed != nil, "call", call != nil)
	h := w.Header()
	h.Set("Content-Type", ContentTypeSDP)
	h.Set("Location", r.URL.Path+"/"+sess.id)
	h.Set("ETag", sess.etag)
	h.Set("Accept-Patch", ContentTypeFrag)
	h["Link"] = iceServerLinks(s.opts.ICEServers)
	w.WriteHeader(http.StatusCreated)
	io.WriteString(w, answer)
	return sess
}

// HandleOptions answers OPTIONS on the WHEP endpoint: 204 with the
// methods and the offer's content type, and the ICE servers (Link
// rel="ice-server") when a paired user asks (Options.User names one): a
// CORS preflight carries no credential and learns no TURN password.
func (s *Server) HandleOptions(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Allow", "OPTIONS, POST")
	h.Set("Accept-Post", ContentTypeSDP)
	if s.opts.User == nil || s.userOf(r).id != "" {
		h["Link"] = iceServerLinks(s.opts.ICEServers)
	}
	w.WriteHeader(http.StatusNoContent)
}

// HandlePatch takes trickled ICE candidates for the session named by the
// "id" path value. An If-Match header must name the session's ETag (or
// be "*"): 412 otherwise, as for a client holding another ICE session.
func (s *Server) HandlePatch(w http.ResponseWriter, r *http.Request) {
	sess := s.lookup(w, r)
	if sess == nil {
		return
	}
	if !ifMatch(r.Header.Values("If-Match"), sess.etag) {
		httpError(w, http.StatusPreconditionFailed, ErrETagMismatch.Error())
		return
	}
	body, ok := readBody(w, r, ContentTypeFrag)
	if !ok {
		return
	}
	if err := sess.trickle(body, s.filterFor(r)); err != nil {
		code := http.StatusBadRequest
		if errors.Is(err, errRestart) {
			code = http.StatusUnprocessableEntity
		}
		httpError(w, code, err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// HandleDelete ends the session named by the "id" path value.
func (s *Server) HandleDelete(w http.ResponseWriter, r *http.Request) {
	sess := s.lookup(w, r)
	if sess == nil {
		return
	}
	sess.close("viewer left")
	w.WriteHeader(http.StatusOK)
}

// lookup finds the session named by the "id" path value, or answers 404:
// a session that another user made is not found either.
func (s *Server) lookup(w http.ResponseWriter, r *http.Request) *session {
	id := r.PathValue("id")
	u := s.userOf(r)
	s.mu.Lock()
	sess := s.sessions[id]
	s.mu.Unlock()
	if sess == nil || sess.user.id != u.id {
		httpError(w, http.StatusNotFound, ErrNoSession.Error())
		return nil
	}
	return sess
}

// user is who made a session.
type user struct {
	id    string
	owner bool
}

// userOf returns the user who made r.
func (s *Server) userOf(r *http.Request) user {
	if s.opts.User == nil {
		return user{owner: true}
	}
	id, owner := s.opts.User(r)
	return user{id: id, owner: owner}
}

var (
	// ErrNoSession is a session that does not exist, or not for the
	// user who asked.
	ErrNoSession = errors.New("whep: no such session")
	// ErrETagMismatch is a PATCH whose If-Match names another ICE
	// session than the one the session has.
	ErrETagMismatch = errors.New("whep: If-Match does not match the session's ETag")
	errFull         = errors.New("whep: viewer limit reached")
	errUserFull     = errors.New("whep: per-user viewer limit reached")
	errClosing      = errors.New("whep: shutting down")
)

// reserve takes a viewer slot for a new session of u (of feed, when not
// nil) whose offer arrived at posted, and starts the goroutine that owns
// it.
func (s *Server) reserve(feed *Feed, call *Call, posted time.Time, u user) (*session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errClosing
	}
	if err := s.admitLocked(u); err != nil {
		s.refused++
		return nil, err
	}
	var b [16]byte
	rand.Read(b[:])
	sess := newSession(s, hex.EncodeToString(b[:]), feed, posted)
	sess.call = call
	rand.Read(b[:8])
	sess.etag = `"` + hex.EncodeToString(b[:8]) + `"`
	sess.user = u
	s.sessions[sess.id] = sess
	s.served++
	s.spawnLocked(sess.run)
	return sess, nil
}

// admitLocked says whether u may have one more session: within their own
// limit, and within the server's, whose last slot only an owner takes.
func (s *Server) admitLocked(u user) error {
	if s.opts.User != nil {
		n := 0
		for _, sess := range s.sessions {
			if sess.user.id == u.id {
				n++
			}
		}
		if n >= s.opts.MaxViewersPerUser {
			return fmt.Errorf("%w (%d sessions; end one first)", errUserFull, s.opts.MaxViewersPerUser)
		}
	}
	switch n := len(s.sessions) + s.held; {
	case n >= s.opts.MaxViewers:
		return fmt.Errorf("%w (%d)", errFull, s.opts.MaxViewers)
	case !u.owner && n >= s.opts.MaxViewers-1:
		return fmt.Errorf("%w (%d, the last kept for an owner)", errFull, s.opts.MaxViewers)
	}
	return nil
}

// SetHeld says how many of MaxViewers slots are held by consumers of the
// live stream outside the server (the WHIP publish to an SFU counts as
// one viewer): new sessions are admitted within what they leave. Sessions
// already running are not ended.
func (s *Server) SetHeld(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.held = max(n, 0)
}

// EndUser ends every session, live and playback, of the user id (revoked,
// expired, or given another role), waits until they are torn down and
// returns how many there were. Their viewers see the connection close.
func (s *Server) EndUser(id, reason string) int {
	s.mu.Lock()
	var ended []*session
	for _, sess := range s.sessions {
		if sess.user.id == id {
			ended = append(ended, sess)
		}
	}
	s.mu.Unlock()
	for _, sess := range ended {
		sess.end(reason)
	}
	for _, sess := range ended {
		<-sess.done
	}
	if len(ended) > 0 {
		s.log.Info("whep: user's sessions ended", "user", id, "sessions", len(ended), "reason", reason)
	}
	return len(ended)
}

// EndSession ends the session id, whoever made it (an owner's route), and
// waits until it is torn down. It returns ErrNoSession if there is none.
func (s *Server) EndSession(id string) error {
	s.mu.Lock()
	sess := s.sessions[id]
	s.mu.Unlock()
	if sess == nil {
		return fmt.Errorf("%w: %q", ErrNoSession, id)
	}
	sess.close("ended by an owner")
	return nil
}

// EndCall ends the sessions of the doorbell call id (Call.ID: the
// answering phone's), without waiting for their teardown: the call's
// state machine tells it from a transition that the teardown's
// Call.Ended reports back to. It returns how many it ended.
func (s *Server) EndCall(id, reason string) int {
	s.mu.Lock()
	var ended []*session
	for _, sess := range s.sessions {
		if sess.call != nil && sess.call.ID == id {
			ended = append(ended, sess)
		}
	}
	s.mu.Unlock()
	for _, sess := range ended {
		sess.end(reason)
	}
	return len(ended)
}

// spawn runs f on a goroutine that Close waits for, unless the server is
// closed. Every goroutine of the server's sessions starts here: the
// WaitGroup grows only under the lock while the server is open, so no Add
// races with Close's Wait.
func (s *Server) spawn(f func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.spawnLocked(f)
}

func (s *Server) spawnLocked(f func()) bool {
	if s.closed {
		return false
	}
	s.wg.Go(f)
	return true
}

func (s *Server) forget(sess *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sessions[sess.id] == sess {
		delete(s.sessions, sess.id)
		sess.mu.Lock()
		s.nacks += sess.nacks
		s.plis += sess.plis
		sess.mu.Unlock()
	}
}

// newPeerConnection creates a peer connection for a session playing src
// and returns the bandwidth estimator that its congestion-control
// interceptor made. With rtcp, a viewer of a source without congestion
// control gets its RTCP pushed to rtcp (engine.newAPI; pushed): no
// goroutine needs to read it.
func (s *Server) newPeerConnection(src source, rtcp func(ssrc uint32, pkt []byte)) (pc *webrtc.PeerConnection, est cc.BandwidthEstimator, pushed bool, err error) {
	s.newPC.Lock()
	defer s.newPC.Unlock()
	cfg := webrtc.Configuration{
		Certificates:  []webrtc.Certificate{*s.opts.Certificate},
		BundlePolicy:  webrtc.BundlePolicyMaxBundle,
		RTCPMuxPolicy: webrtc.RTCPMuxPolicyRequire,
	}
	steer := src.Info().ForcesKeyframes
	if steer {
		rtcp = nil
	}
	pc, err = s.eng.newAPI(steer, rtcp).NewPeerConnection(cfg)
	if err != nil {
		return nil, nil, false, err
	}
	select {
	case est := <-s.eng.estimators:
		return pc, est, rtcp != nil, nil
	default:
		return pc, nil, rtcp != nil, nil
	}
}

// Run steers the encoder's bitrate from the viewers' estimates until ctx
// ends: the lowest estimate among viewers that have been connected for a
// while, within the configured bounds; with no viewers, the default.
func (s *Server) Run(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	last := -1
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		target := 0
		s.mu.Lock()
		for _, sess := range s.sessions {
			if sess.feed != nil {
				continue // a recording's viewer does not steer the live encoder
			}
			if est := sess.estimate(2 * time.Second); est > 0 && (target == 0 || est < target) {
				target = est
			}
		}
		s.mu.Unlock()
		if target > 0 {
			target = min(max(target, s.opts.MinBitrate), s.opts.MaxBitrate)
		}
		if target != last {
			s.hub.SetTargetBitrate(target)
			if last >= 0 && (target == 0) != (last == 0) || abs(target-last) > last/5 {
				s.log.Debug("whep: encoder bitrate target", "bps", target)
			}
			last = target
		}
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// Close ends every session, waits until they are torn down and releases
// the UDP mux. It is safe to call twice.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	all := make([]*session, 0, len(s.sessions))
	for _, sess := range s.sessions {
		all = append(all, sess)
	}
	s.mu.Unlock()
	for _, sess := range all {
		sess.end("server closing")
	}
	close(s.stop)
	s.wg.Wait()
	return s.eng.close()
}

// Stats is a snapshot of the server's sessions.
type Stats struct {
	Viewers int
	// Held counts the viewer slots held outside the server (SetHeld).
	Held     int
	Served   uint64
	Refused  uint64
	Sessions []SessionStats
	// NACKs and PLIs count the RTCP NACK and PLI/FIR packets of every
	// session since the server started, those that ended included.
	NACKs, PLIs uint64
	// LatencyP50 and LatencyP99 measure capture to first RTP packet of a
	// frame, over the last frames sent.
	LatencyP50, LatencyP99 time.Duration
}

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	st := Stats{Viewers: len(s.sessions), Held: s.held, Served: s.served, Refused: s.refused, NACKs: s.nacks, PLIs: s.plis}
	all := make([]*session, 0, len(s.sessions))
	for _, sess := range s.sessions {
		all = append(all, sess)
	}
	// Sorted outside the lock: the fan-out's shards record a sample
	// under it for every frame to every viewer.
	samples := s.latency.snapshot()
	s.mu.Unlock()
	st.LatencyP50, st.LatencyP99 = percentiles(samples)
	for _, sess := range all {
		ss := sess.stats()
		st.Sessions = append(st.Sessions, ss)
		st.NACKs += ss.NACKs
		st.PLIs += ss.PLIs
	}
	slices.SortFunc(st.Sessions, func(a, b SessionStats) int { return a.Created.Compare(b.Created) })
	return st
}

func (s *Server) recordLatency(d time.Duration) {
	s.mu.Lock()
	s.latency.add(d)
	s.mu.Unlock()
}

// latencyRing keeps the last samples of in-daemon latency.
type latencyRing struct {
	samples [4096]time.Duration
	n       int
}

func (l *latencyRing) add(d time.Duration) {
	l.samples[l.n%len(l.samples)] = d
	l.n++
}

// snapshot copies the samples kept.
func (l *latencyRing) snapshot() []time.Duration {
	return slices.Clone(l.samples[:min(l.n, len(l.samples))])
}

// percentiles sorts s and returns its median and 99th percentile.
func percentiles(s []time.Duration) (p50, p99 time.Duration) {
	n := len(s)
	if n == 0 {
		return 0, 0
	}
	slices.Sort(s)
	return s[n/2], s[min(n-1, n*99/100)]
}
