package rtsp

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"

	"github.com/camd-project/camd/media"
	"github.com/camd-project/camd/media/h264"
)

// Payload types camd announces.
const (
	payloadH264 = 96
	payloadOpus = 111
	payloadPCMU = 0
)

// Errors.
var (
	ErrClosed = errors.New("rtsp: server closed")
	errFull   = errors.New("rtsp: session limit reached")
)

// hub is what the server needs of the live stream's media hub
// (*media.Hub): a consumer per session, the source's description and the
// newest keyframe (the SDP's parameter sets).
type hub interface {
	Subscribe(media.ConsumerOptions) *media.Consumer
	Info() media.SourceInfo
	LastKeyframe() *media.Frame
}

// VerifyFunc checks the stream key named user: it hands the key's secret
// to proof, which recomputes what the client sent from it, and returns
// the user the sessions of the key belong to
// (pairing.Manager.VerifyKey). An error refuses the request.
type VerifyFunc func(user string, proof func(secret string) bool) (subject string, err error)

// Options configure a Server. The zero value of each field means its
// default, except Address and Verify, which are required.
type Options struct {
	// Address is the RTSP (TCP) address, e.g. ":8554".
	Address string
	// RTPPort is the UDP port of RTP (even; RTCP takes the next one).
	// 0: no UDP transport, only TCP (interleaved).
	RTPPort int
	// Path is the live stream's path (default "/live").
	Path string
	// Verify checks stream keys (digest authentication). Required.
	Verify VerifyFunc
	// MaxSessions bounds the sessions at once (default 16);
	// MaxSessionsPerUser one key's (default 8).
	MaxSessions, MaxSessionsPerUser int
	// ReplayBitrate paces the cached group of pictures that a session of
	// a passthrough source starts with, in bits per second (default
	// 20 Mbps), as WHEP does.
	ReplayBitrate int
	// QueueFrames bounds each session's queue (default: the hub's).
	QueueFrames int
	// Listen opens the TCP listener (default net.Listen): the daemon
	// wraps it with its connection caps.
	Listen func(network, address string) (net.Listener, error)
	Logger *slog.Logger
}

// Server serves the hub's live stream over RTSP: H.264, Opus and, when
// the source has the PCM, G.711 µ-law; TCP and UDP; digest
// authentication with stream keys. Every session is a consumer of the
// hub: nothing is encoded for RTSP.
type Server struct {
	opts Options
	hub  hub
	log  *slog.Logger
	srv  *gortsplib.Server

	addrMu sync.Mutex
	addr   net.Addr

	mu       sync.Mutex
	sessions map[*gortsplib.ServerSession]*session
	closed   bool
	served   uint64
	refused  uint64
}

// New starts an RTSP server for the hub's stream.
func New(h hub, opts Options) (*Server, error) {
	if opts.Address == "" || opts.Verify == nil {
		return nil, errors.New("rtsp: Options.Address and Options.Verify are required")
	}
	if opts.Path == "" {
		opts.Path = "/live"
	}
	if opts.MaxSessions <= 0 {
		opts.MaxSessions = 16
	}
	if opts.MaxSessionsPerUser <= 0 {
		opts.MaxSessionsPerUser = 8
	}
	if opts.ReplayBitrate <= 0 {
		opts.ReplayBitrate = 20_000_000
	}
	if opts.Listen == nil {
		opts.Listen = net.Listen
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{opts: opts, hub: h, log: opts.Logger, sessions: map[*gortsplib.ServerSession]*session{}}
	s.srv = &gortsplib.Server{
		Handler:     (*handler)(s),
		RTSPAddress: opts.Address,
		// A keyframe is a burst: room for a 1 MB one over TCP before the
		// writer drains (the cached group of pictures is paced).
		WriteQueueSize: 1024,
		MaxPacketSize:  media.RTPPayloadSize + 40,
		Listen: func(network, address string) (net.Listener, error) {
			l, err := opts.Listen(network, address)
			if err == nil {
				s.addrMu.Lock()
				s.addr = l.Addr()
				s.addrMu.Unlock()
			}
			return l, err
		},
	}
	if opts.RTPPort > 0 {
		host, _, err := net.SplitHostPort(opts.Address)
		if err != nil {
			return nil, fmt.Errorf("rtsp: address %q: %w", opts.Address, err)
		}
		s.srv.UDPRTPAddress = net.JoinHostPort(host, strconv.Itoa(opts.RTPPort))
		s.srv.UDPRTCPAddress = net.JoinHostPort(host, strconv.Itoa(opts.RTPPort+1))
	}
	if err := s.srv.Start(); err != nil {
		return nil, fmt.Errorf("rtsp: %w", err)
	}
	return s, nil
}

// Addr is the TCP address the server listens on.
func (s *Server) Addr() net.Addr {
	s.addrMu.Lock()
	defer s.addrMu.Unlock()
	return s.addr
}

// Close ends every session and releases the ports. It is safe to call
// twice.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.mu.Unlock()
	s.srv.Close() // closes every session: OnSessionClose stops each
}

// EndUser ends every session of the user (its key revoked or expired)
// and returns how many there were.
func (s *Server) EndUser(user, reason string) int {
	s.mu.Lock()
	var end []*session
	for _, sess := range s.sessions {
		if sess.user == user {
			end = append(end, sess)
		}
	}
	s.mu.Unlock()
	for _, sess := range end {
		s.log.Info("rtsp: ending session", "session", sess.id, "user", user, "reason", reason)
		sess.ss.Close()
	}
	return len(end)
}

// ErrNoSession is a session that does not exist.
var ErrNoSession = errors.New("rtsp: no such session")

// EndSession ends the session id (an owner's request).
func (s *Server) EndSession(id string) error {
	s.mu.Lock()
	var found *session
	for _, sess := range s.sessions {
		if sess.id == id {
			found = sess
		}
	}
	s.mu.Unlock()
	if found == nil {
		return ErrNoSession
	}
	s.log.Info("rtsp: ending session", "session", id, "user", found.user, "reason", "ended by an owner")
	found.ss.Close()
	return nil
}

// SessionStats describes one RTSP session.
type SessionStats struct {
	ID        string
	User      string
	Transport string
	State     string
	Created   time.Time
	// FirstFrame is the time from the PLAY to the first keyframe sent.
	FirstFrame time.Duration
	Frames     uint64
	Dropped    uint64
}

// Stats lists the sessions, and counts those served and refused.
type Stats struct {
	Sessions        []SessionStats
	Served, Refused uint64
}

// Stats returns the server's sessions and counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	st := Stats{Served: s.served, Refused: s.refused}
	list := make([]*session, 0, len(s.sessions))
	for _, sess := range s.sessions {
		list = append(list, sess)
	}
	s.mu.Unlock()
	for _, sess := range list {
		st.Sessions = append(st.Sessions, sess.stats())
	}
	return st
}

// description is the stream as the hub's source makes it now.
func (s *Server) description() *description.Session {
	info := s.hub.Info()
	video := &format.H264{PayloadTyp: payloadH264, PacketizationMode: 1}
	if key := s.hub.LastKeyframe(); key != nil {
		for _, n := range h264.NALUs(key.Data) {
			switch n[0] & 0x1f {
			case 7:
				video.SPS = n
			case 8:
				video.PPS = n
			}
		}
	}
	desc := &description.Session{Title: "camd", Medias: []*description.Media{{Type: description.MediaTypeVideo, Formats: []format.Format{video}}}}
	if info.Audio {
		desc.Medias = append(desc.Medias, &description.Media{Type: description.MediaTypeAudio, Formats: []format.Format{&format.Opus{PayloadTyp: payloadOpus, ChannelCount: 1}}})
	}
	if info.G711 {
		desc.Medias = append(desc.Medias, &description.Media{Type: description.MediaTypeAudio, Formats: []format.Format{&format.G711{PayloadTyp: payloadPCMU, MULaw: true, SampleRate: 8000, ChannelCount: 1}}})
	}
	return desc
}

// sdp is the DESCRIBE answer's body for desc: each media's control is
// trackID=N, as gortsplib's per-session streams expect at SETUP.
func sdp(desc *description.Session) ([]byte, error) {
	out := &description.Session{Title: desc.Title}
	for i, m := range desc.Medias {
		out.Medias = append(out.Medias, &description.Media{Type: m.Type, Control: "trackID=" + strconv.Itoa(i), Formats: m.Formats})
	}
	return out.Marshal(false)
}

// admit reserves a session for user, or says why not.
func (s *Server) admit(ss *gortsplib.ServerSession, user string, stream *gortsplib.ServerStream, desc *description.Session) (*session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	n := 0
	for _, o := range s.sessions {
		if o.user == user {
			n++
		}
	}
	switch {
	case len(s.sessions) >= s.opts.MaxSessions:
		s.refused++
		return nil, fmt.Errorf("%w (%d)", errFull, s.opts.MaxSessions)
	case n >= s.opts.MaxSessionsPerUser:
		s.refused++
		return nil, fmt.Errorf("%w (%d for one key)", errFull, s.opts.MaxSessionsPerUser)
	}
	var id [8]byte
	rand.Read(id[:])
	sess := newSession(s, ss, hex.EncodeToString(id[:]), user, stream, desc)
	s.sessions[ss] = sess
	s.served++
	return sess, nil
}

func (s *Server) session(ss *gortsplib.ServerSession) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[ss]
}

func (s *Server) forget(ss *gortsplib.ServerSession) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess := s.sessions[ss]
	delete(s.sessions, ss)
	return sess
}

// pathOK reports whether path names the live stream.
func (s *Server) pathOK(path string) bool { return path == s.opts.Path }

// respond is an answer without a body.
func respond(code base.StatusCode) *base.Response { return &base.Response{StatusCode: code} }
