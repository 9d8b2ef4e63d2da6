package whep

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/pion/interceptor/pkg/cc"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"

	"github.com/camd-project/camd/media"
)

var (
	errInternal = errors.New("whep: internal error")
	errRestart  = errors.New("whep: ICE restart is not supported; start a new session")
	errEnded    = errors.New("whep: session ended")
)

// pliGap is the least time between keyframe requests from one viewer.
const pliGap = 250 * time.Millisecond

// session is one viewer. One goroutine, run, owns its reaction to the peer
// connection's state: it alone subscribes to the hub, starts sending and
// tears the session down. pion reports each state change on a goroutine of
// its own and in no promised order, so onState only hands the state to
// run; once the session has ended, every later change is ignored.
type session struct {
	id      string
	etag    string // the ICE session's entity tag (quoted), for If-Match
	srv     *Server
	user    user  // who offered it
	feed    *Feed // nil: the live stream
	call    *Call // a doorbell call's: audio both ways
	created time.Time
	posted  time.Time // when the offer arrived

	// ctx ends with the session: end cancels it.
	ctx    context.Context
	cancel context.CancelFunc
	states chan webrtc.PeerConnectionState
	done   chan struct{} // closed once run has torn the session down

	mu          sync.Mutex
	pc          *webrtc.PeerConnection
	est         cc.BandwidthEstimator
	video       *track
	audio       *track
	ufrag       string
	state       webrtc.PeerConnectionState
	consumer    *media.Consumer // set by run only
	outlet      *outlet         // the live viewer's place in its shard, once sending
	connectedAt time.Time
	firstFrame  time.Duration // from the POST to the first keyframe sent
	frames      uint64
	nacks, plis uint64
	lastPLI     time.Time
	closeReason string
	cands       map[string]bool // remote candidates received, counted against MaxCandidates

	endOnce sync.Once
}

func newSession(srv *Server, id string, feed *Feed, posted time.Time) *session {
	ctx, cancel := context.WithCancel(context.Background())
	return &session{
		id: id, srv: srv, feed: feed, created: time.Now(), posted: posted,
		ctx: ctx, cancel: cancel,
		states: make(chan webrtc.PeerConnectionState, 4),
		done:   make(chan struct{}),
		cands:  make(map[string]bool),
	}
}

// source is the hub the session plays: the feed's, or the live stream's.
func (s *session) source() source {
	if s.feed != nil {
		return s.feed.Hub
	}
	return s.srv.hub
}

// start negotiates: it applies the offer, attaches camd's tracks and
// returns the answer with all of camd's candidates (the UDP mux makes
// gathering immediate).
func (s *session) start(reqCtx context.Context, offer string, info offerInfo) (string, error) {
	// A live viewer's RTCP is answered on SRTCP's read loop (its NACKs
	// by its fan-out shard); a recording's viewer is served by a
	// goroutine of its own, and a call's phone talks back: those keep
	// pion's buffers and readRTCP.
	var push func(uint32, []byte)
	if s.feed == nil && s.call == nil {
		push = s.onRTCP
	}
	pc, est, pushed, err := s.srv.newPeerConnection(s.source(), push)
	if err != nil {
		return "", fmt.Errorf("%w: %v", errInternal, err)
	}
	s.mu.Lock()
	if s.ctx.Err() != nil {
		// Ended meanwhile (the server is closing): run has torn down
		// without this connection.
		s.mu.Unlock()
		pc.Close()
		return "", errEnded
	}
	s.pc, s.est, s.ufrag = pc, est, info.ufrag
	s.mu.Unlock()
	pc.OnConnectionStateChange(s.onState)

	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return "", fmt.Errorf("%w: %v", ErrBadSDP, err)
	}
	// Stats may read the tracks while the offer is being answered.
	prof := streamProfile(s.source())
	video, audio := newTrack(webrtc.RTPCodecTypeVideo, prof), (*track)(nil)
	// A call's phone that receives PCMU but not Opus hears the stream's
	// G.711, when it carries one.
	g711 := s.call != nil && info.pcmu && s.source().Info().G711
	if info.audio || g711 {
		audio = newTrack(webrtc.RTPCodecTypeAudio, prof)
		audio.g711 = g711
		audio.rtcp = pc.WriteRTCP
	}
	video.rtcp = pc.WriteRTCP
	s.mu.Lock()
	s.video, s.audio = video, audio
	s.mu.Unlock()
	senders := make([]*webrtc.RTPSender, 0, 2)
	vs, err := pc.AddTrack(video)
	if err != nil {
		return "", fmt.Errorf("%w: video track: %v", errInternal, err)
	}
	senders = append(senders, vs)
	if audio != nil {
		as, err := pc.AddTrack(audio)
		if err != nil {
			return "", fmt.Errorf("%w: audio track: %v", errInternal, err)
		}
		senders = append(senders, as)
	}
	var talk []webrtc.RTPCodecParameters
	if s.call != nil {
		talk = talkCodecsOf(pc)
	}
	if err := narrowCodecs(pc, prof); err != nil {
		return "", fmt.Errorf("%w: %v", ErrNoCodec, err)
	}
	if s.call != nil {
		if err := widenTalk(pc, talk); err != nil {
			return "", fmt.Errorf("%w: %v", ErrNoTalk, err)
		}
		pc.OnTrack(func(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
			if t.Kind() == webrtc.RTPCodecTypeAudio {
				s.srv.spawn(func() { s.readTalk(t) })
			}
		})
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrNoCodec, err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(answer); err != nil {
		return "", fmt.Errorf("%w: %v", errInternal, err)
	}
	select {
	case <-gathered:
	case <-reqCtx.Done():
		return "", reqCtx.Err()
	case <-s.ctx.Done():
		return "", errEnded
	case <-time.After(2 * time.Second):
		return "", fmt.Errorf("%w: ICE gathering timed out", errInternal)
	}
	for _, snd := range senders {
		if !pushed && !s.srv.spawn(func() { s.readRTCP(snd) }) {
			return "", errEnded
		}
	}
	return pc.LocalDescription().SDP, nil
}

// onState is the peer connection's state callback. It runs on a goroutine
// of pion's, possibly after the session ended, and only passes the state
// on to run.
func (s *session) onState(st webrtc.PeerConnectionState) {
	select {
	case s.states <- st:
	case <-s.ctx.Done(): // ended: ignored
	}
}

// run owns the session from its reservation to its end: it reacts to
// state changes, frees a session that does not connect within the ICE
// timeout, and tears the session down once it has ended.
func (s *session) run() {
	defer s.teardown()
	deadline := time.NewTimer(s.srv.opts.ICETimeout)
	defer deadline.Stop()
	timeout := deadline.C
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-timeout:
			s.end("did not connect in time")
			return
		case st := <-s.states:
			if s.ctx.Err() != nil {
				return // both were ready: the end wins
			}
			s.mu.Lock()
			s.state = st
			s.mu.Unlock()
			switch st {
			case webrtc.PeerConnectionStateConnected:
				deadline.Stop()
				timeout = nil
				s.connect()
			case webrtc.PeerConnectionStateFailed:
				s.end("connection failed")
				return
			case webrtc.PeerConnectionStateClosed:
				s.end("connection closed")
				return
			}
		}
	}
}

// connect starts the media once ICE and DTLS are up, from a fresh
// keyframe: no media is sent into the handshake. A connection that comes
// back after "disconnected" carries on with the same consumer. A viewer
// of the live stream is served by a shard of the server's fan-out; a
// recording's viewer (its own hub) by a goroutine of its own.
func (s *session) connect() {
	if s.consumer != nil {
		return
	}
	opts := media.ConsumerOptions{Name: "viewer " + s.id[:8], QueueFrames: s.srv.opts.QueueFrames, JumpToLive: true}
	var sh *shard
	if s.feed == nil {
		if sh = s.srv.shard(); sh == nil {
			s.end("server closing")
			return
		}
		opts.Notify = sh.notify
	}
	c := s.source().Subscribe(opts)
	s.mu.Lock()
	s.connectedAt = time.Now()
	s.consumer = c
	video, audio := s.video, s.audio
	s.mu.Unlock()
	if s.feed != nil && s.feed.Start != nil {
		s.feed.Start()
	}
	start := func() { s.send(c, video, audio) }
	if sh != nil {
		start = func() {
			if waitBound(s.ctx, video, audio) != nil {
				sh.release()
				return
			}
			o := &outlet{c: c, video: video, audio: audio, sent: s.sent, done: s.sendDone, sh: sh}
			s.mu.Lock()
			s.outlet = o
			s.mu.Unlock()
			sh.add(o)
		}
	}
	if !s.srv.spawn(start) {
		if sh != nil {
			sh.release()
		}
		s.end("server closing")
	}
}

// end ends the session: it leaves the server's table at once and run tears
// it down. It is safe to call from any goroutine, more than once; the
// first reason is kept.
func (s *session) end(reason string) {
	s.endOnce.Do(func() {
		s.mu.Lock()
		s.closeReason = reason
		s.mu.Unlock()
		s.srv.forget(s)
		s.cancel()
	})
}

// close ends the session and waits until it is torn down. It must not be
// called by the session's own goroutines.
func (s *session) close(reason string) {
	s.end(reason)
	<-s.done
}

// teardown frees everything the session holds; run calls it last.
func (s *session) teardown() {
	s.mu.Lock()
	c, pc, reason := s.consumer, s.pc, s.closeReason
	s.mu.Unlock()
	if c != nil {
		c.Close()
	}
	if pc != nil {
		pc.Close()
	}
	if s.feed != nil && s.feed.Stopped != nil {
		s.feed.Stopped()
	}
	if s.call != nil && s.call.Ended != nil {
		s.call.Ended(reason)
	}
	s.srv.log.Info("whep: session ended", "session", s.id, "reason", reason)
	close(s.done)
}

// send forwards the hub's frames to the viewer until the session ends.
func (s *session) send(c *media.Consumer, video, audio *track) {
	s.sendDone(forward(s.ctx, c, video, audio, s.srv.eng.batch, s.srv.opts.ReplayBitrate, s.sent))
}

// sent counts a video frame sent, and samples its latency once the
// viewer has caught up with live.
func (s *session) sent(f *media.Frame, caughtUp bool) {
	s.mu.Lock()
	if s.frames == 0 {
		s.firstFrame = time.Since(s.posted)
	}
	s.frames++
	s.mu.Unlock()
	if caughtUp && !f.Captured.IsZero() {
		s.srv.recordLatency(time.Since(f.Captured))
	}
}

// sendDone ends the session once its frames stop: a write failed
// (errSend), its hub closed or the session ended.
func (s *session) sendDone(err error) {
	if errors.Is(err, errSend) {
		s.end(err.Error())
		return
	}
	s.end("stream ended") // its hub closed (a feed played to its end), or the session ended
}

// readRTCP reads the viewer's RTCP (readRTCP), counting its NACKs.
func (s *session) readRTCP(snd *webrtc.RTPSender) {
	readRTCP(snd, s.video, s.srv.eng.batch, s.nacked, s.keyframe)
}

// onRTCP answers the RTCP of a live viewer that SRTCP's read loop hands
// over (engine.newAPI), addressed to the video track: a PLI or FIR
// asks for a keyframe, and the packets a NACK names are queued for the
// viewer's shard to resend (outlet.nack). It must not wait on the track
// (track.mu): a track's write may wait on pion's DTLS transport, whose
// Stop waits for this loop.
func (s *session) onRTCP(ssrc uint32, pkt []byte) {
	s.mu.Lock()
	video, o := s.video, s.outlet
	s.mu.Unlock()
	if video == nil || ssrc != video.ssrcBound.Load() {
		return
	}
	pkts, err := rtcp.Unmarshal(pkt)
	if err != nil {
		return
	}
	answerRTCP(pkts, func(p *rtcp.TransportLayerNack) {
		s.nacked()
		if o != nil {
			o.nack(p)
		}
	}, s.keyframe)
}

func (s *session) nacked() {
	s.mu.Lock()
	s.nacks++
	s.mu.Unlock()
}

func (s *session) keyframe() {
	s.mu.Lock()
	c := s.consumer
	s.plis++
	now := time.Now()
	if c == nil || now.Sub(s.lastPLI) < pliGap {
		s.mu.Unlock()
		return
	}
	s.lastPLI = now
	s.mu.Unlock()
	c.RequestKeyframe()
}

// trickle applies an application/trickle-ice-sdpfrag body: the candidates
// that f allows go to pion, within MaxCandidates for the fragment and for
// the session.
func (s *session) trickle(frag []byte, f candidateFilter) error {
	s.mu.Lock()
	ufrag := s.ufrag
	s.mu.Unlock()
	var mid string
	var cands []webrtc.ICECandidateInit
	for line := range strings.Lines(string(frag)) {
		line = strings.TrimSpace(line)
		switch {
		case line == "":
		case strings.HasPrefix(line, "a=ice-ufrag:"):
			if u := strings.TrimPrefix(line, "a=ice-ufrag:"); ufrag != "" && u != ufrag {
				return errRestart
			}
		case strings.HasPrefix(line, "a=mid:"):
			mid = strings.TrimPrefix(line, "a=mid:")
		case strings.HasPrefix(line, "a=candidate:"):
			m := mid
			cands = append(cands, webrtc.ICECandidateInit{Candidate: strings.TrimPrefix(line, "a="), SDPMid: &m})
		case strings.HasPrefix(line, "a="), strings.HasPrefix(line, "m="), strings.HasPrefix(line, "c="):
			// ice-pwd, ice-options, end-of-candidates, group: nothing to do.
		default:
			return fmt.Errorf("whep: bad trickle fragment line %q", truncate(line, 60))
		}
	}
	distinct := make(map[string]bool, len(cands))
	for _, c := range cands {
		distinct[c.Candidate] = true
	}
	if len(distinct) > MaxCandidates {
		return fmt.Errorf("%w: the PATCH carries %d; camd takes at most %d", ErrTooManyCandidates, len(distinct), MaxCandidates)
	}
	allowed := cands[:0:0]
	for _, c := range cands {
		pass, err := f.check(c.Candidate)
		if err != nil {
			return err
		}
		if pass {
			allowed = append(allowed, c)
		}
	}
	// A fragment that would take the session over the limit adds nothing.
	s.mu.Lock()
	var fresh []string
	for c := range distinct {
		if !s.cands[c] {
			fresh = append(fresh, c)
		}
	}
	if total := len(s.cands) + len(fresh); total > MaxCandidates {
		s.mu.Unlock()
		return fmt.Errorf("%w: the session would carry %d; camd takes at most %d", ErrTooManyCandidates, total, MaxCandidates)
	}
	for _, c := range fresh {
		s.cands[c] = true
	}
	pc := s.pc
	s.mu.Unlock()
	if dropped := len(cands) - len(allowed); dropped > 0 {
		s.srv.log.Debug("whep: trickled candidates dropped", "session", s.id, "dropped", dropped, "of", len(cands))
	}
	if pc == nil {
		return errEnded
	}
	for _, c := range allowed {
		if err := pc.AddICECandidate(c); err != nil {
			return fmt.Errorf("whep: bad candidate %q: %v", truncate(c.Candidate, 60), err)
		}
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// estimate returns the viewer's bandwidth estimate once it has been
// connected for at least settle, else 0.
func (s *session) estimate(settle time.Duration) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.est == nil || s.connectedAt.IsZero() || time.Since(s.connectedAt) < settle {
		return 0
	}
	return s.est.GetTargetBitrate()
}

// SessionStats describes one viewer.
type SessionStats struct {
	ID string
	// User made the session (Options.User), as an owner or not; for an
	// owner's view only.
	User  string
	Owner bool
	// Playback is a session of a Feed, not of the live stream.
	Playback bool
	State    string
	Created  time.Time
	// FirstFrame is the time from the POST to the first keyframe sent.
	FirstFrame      time.Duration
	Frames          uint64
	Packets, Resent uint64
	NACKs, PLIs     uint64
	Dropped         uint64
	BitrateEstimate int
}

func (s *session) stats() SessionStats {
	s.mu.Lock()
	st := SessionStats{
		ID: s.id, User: s.user.id, Owner: s.user.owner, Playback: s.feed != nil, State: s.state.String(), Created: s.created, FirstFrame: s.firstFrame,
		Frames: s.frames, NACKs: s.nacks, PLIs: s.plis,
	}
	c, est, video := s.consumer, s.est, s.video
	s.mu.Unlock()
	if c != nil {
		st.Dropped = c.Stats().Dropped
	}
	if est != nil {
		st.BitrateEstimate = est.GetTargetBitrate()
	}
	if video != nil {
		st.Packets, st.Resent = video.counters()
	}
	return st
}
