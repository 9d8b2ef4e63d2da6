package rtsp

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"strings"
	"sync"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/headers"
	"github.com/bluenviron/gortsplib/v4/pkg/liberrors"
)

// Realm is the digest realm of camd's RTSP server: clients compute
// MD5(user:camd:secret).
const Realm = "camd"

// handler is the Server as gortsplib's handler: its methods run on
// gortsplib's connection and session goroutines.
type handler Server

var (
	_ gortsplib.ServerHandlerOnConnOpen         = (*handler)(nil)
	_ gortsplib.ServerHandlerOnDescribe         = (*handler)(nil)
	_ gortsplib.ServerHandlerOnSetup            = (*handler)(nil)
	_ gortsplib.ServerHandlerOnPlay             = (*handler)(nil)
	_ gortsplib.ServerHandlerOnResponse         = (*handler)(nil)
	_ gortsplib.ServerHandlerOnSessionClose     = (*handler)(nil)
	_ gortsplib.ServerHandlerOnStreamWriteError = (*handler)(nil)
	_ gortsplib.ServerHandlerOnDecodeError      = (*handler)(nil)
)

// conn is what camd keeps for one RTSP connection: its digest nonce, and
// the session whose PLAY it is answering.
type conn struct {
	nonce string

	mu      sync.Mutex
	playing *session
}

func connOf(sc *gortsplib.ServerConn) *conn {
	c, _ := sc.UserData().(*conn)
	return c
}

func (h *handler) OnConnOpen(ctx *gortsplib.ServerHandlerOnConnOpenCtx) {
	var b [16]byte
	rand.Read(b[:])
	ctx.Conn.SetUserData(&conn{nonce: hex.EncodeToString(b[:])})
}

// authenticate checks the request's digest credentials: the user is a
// stream key's ID, and the response is recomputed from its secret by
// Options.Verify. Without credentials it answers 401 with the challenge;
// with wrong ones 401 and an error that closes the connection.
func (h *handler) authenticate(sc *gortsplib.ServerConn, req *base.Request) (string, *base.Response, error) {
	c := connOf(sc)
	challenge := func() *base.Response {
		return &base.Response{StatusCode: base.StatusUnauthorized, Header: base.Header{
			"WWW-Authenticate": headers.Authenticate{Method: headers.AuthMethodDigest, Realm: Realm, Nonce: c.nonce}.Marshal(),
		}}
	}
	if len(req.Header["Authorization"]) == 0 {
		return "", challenge(), nil
	}
	var auth headers.Authorization
	if err := auth.Unmarshal(req.Header["Authorization"]); err != nil || auth.Method != headers.AuthMethodDigest {
		// Basic would send the key in clear over the LAN: not offered,
		// not taken.
		h.log.Info("rtsp: credential refused", "remote", sc.NetConn().RemoteAddr(), "why", "not digest")
		return "", challenge(), liberrors.ErrServerAuth{}
	}
	user, err := h.opts.Verify(auth.Username, digestProof(req, auth, c.nonce))
	if err != nil {
		h.log.Info("rtsp: credential refused", "remote", sc.NetConn().RemoteAddr(), "user", auth.Username, "why", err)
		return "", challenge(), liberrors.ErrServerAuth{}
	}
	return user, nil, nil
}

// digestProof returns the check of a digest response (RFC 2617 without
// qop, as RTSP clients send it; MD5 or SHA-256) against a secret.
func digestProof(req *base.Request, auth headers.Authorization, nonce string) func(secret string) bool {
	return func(secret string) bool {
		if auth.Realm != Realm || subtle.ConstantTimeCompare([]byte(auth.Nonce), []byte(nonce)) != 1 || !uriMatches(req, auth.URI) {
			return false
		}
		hash := func(s string) string { h := md5.Sum([]byte(s)); return hex.EncodeToString(h[:]) }
		if auth.Algorithm != nil && *auth.Algorithm == headers.AuthAlgorithmSHA256 {
			hash = func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
		}
		want := hash(hash(auth.Username+":"+Realm+":"+secret) + ":" + nonce + ":" + hash(string(req.Method)+":"+auth.URI))
		return subtle.ConstantTimeCompare([]byte(want), []byte(auth.Response)) == 1
	}
}

// uriMatches reports whether the digest's URI is the request's: VLC
// sends the stream's URL in SETUP requests for a track.
func uriMatches(req *base.Request, uri string) bool {
	u := req.URL.String()
	if uri == u {
		return true
	}
	if req.Method == base.Setup {
		if i := strings.LastIndex(u, "/trackID="); i >= 0 {
			return uri == u[:i] || uri == u[:i+1]
		}
	}
	return false
}

func (h *handler) OnDescribe(ctx *gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	if _, res, err := h.authenticate(ctx.Conn, ctx.Request); res != nil {
		return res, nil, err
	}
	if !(*Server)(h).pathOK(ctx.Path) {
		return respond(base.StatusNotFound), nil, nil
	}
	body, err := sdp((*Server)(h).description())
	if err != nil {
		return respond(base.StatusInternalServerError), nil, err
	}
	return &base.Response{StatusCode: base.StatusOK, Body: body}, nil, nil
}

// OnSetup makes the session's own stream at its first SETUP: each
// session is a consumer of the hub, starting at a keyframe of its own.
func (h *handler) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	s := (*Server)(h)
	user, res, err := h.authenticate(ctx.Conn, ctx.Request)
	if res != nil {
		return res, nil, err
	}
	if !s.pathOK(ctx.Path) {
		return respond(base.StatusNotFound), nil, nil
	}
	if sess := s.session(ctx.Session); sess != nil {
		if sess.user != user {
			return respond(base.StatusForbidden), nil, nil
		}
		return respond(base.StatusOK), sess.stream, nil
	}
	desc := s.description()
	stream := &gortsplib.ServerStream{Server: s.srv, Desc: desc}
	if err := stream.Initialize(); err != nil {
		return respond(base.StatusInternalServerError), nil, err
	}
	if _, err := s.admit(ctx.Session, user, stream, desc); err != nil {
		stream.Close()
		h.log.Info("rtsp: session refused", "user", user, "remote", ctx.Conn.NetConn().RemoteAddr(), "why", err)
		return respond(base.StatusServiceUnavailable), nil, nil
	}
	return respond(base.StatusOK), stream, nil
}

// OnPlay starts the session's media once the answer is on its way: the
// stream takes packets only after gortsplib has made the session a
// reader, which it does after OnPlay returns (OnResponse).
func (h *handler) OnPlay(ctx *gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	s := (*Server)(h)
	user, res, err := h.authenticate(ctx.Conn, ctx.Request)
	if res != nil {
		return res, err
	}
	sess := s.session(ctx.Session)
	if sess == nil || sess.user != user {
		return respond(base.StatusForbidden), nil
	}
	c := connOf(ctx.Conn)
	c.mu.Lock()
	c.playing = sess
	c.mu.Unlock()
	return respond(base.StatusOK), nil
}

// OnResponse starts the media of a session whose PLAY is being answered
// with 200.
func (h *handler) OnResponse(sc *gortsplib.ServerConn, res *base.Response) {
	c := connOf(sc)
	if c == nil {
		return
	}
	c.mu.Lock()
	sess := c.playing
	c.playing = nil
	c.mu.Unlock()
	if sess != nil && res.StatusCode == base.StatusOK {
		sess.play()
	}
}

func (h *handler) OnSessionClose(ctx *gortsplib.ServerHandlerOnSessionCloseCtx) {
	if sess := (*Server)(h).forget(ctx.Session); sess != nil {
		sess.close(ctx.Error)
	}
}

// OnStreamWriteError: a session's queue overflowed (a slow reader): its
// decoder lost data, so it gets a fresh keyframe.
func (h *handler) OnStreamWriteError(ctx *gortsplib.ServerHandlerOnStreamWriteErrorCtx) {
	if sess := (*Server)(h).session(ctx.Session); sess != nil {
		sess.lost()
	}
}

func (h *handler) OnDecodeError(ctx *gortsplib.ServerHandlerOnDecodeErrorCtx) {
	h.log.Debug("rtsp: bad packet from a client", "err", ctx.Error)
}
