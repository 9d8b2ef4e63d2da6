package onvif

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/camd-project/camd/device/events"
)

// Paths of the services on the ONVIF port. Every path takes any action
// of any service (clients send where GetCapabilities told them, and some
// send everything to the device service); a subscription's PullPoint is
// SubscriptionPath followed by its number.
const (
	DevicePath       = "/onvif/device_service"
	MediaPath        = "/onvif/media_service"
	EventsPath       = "/onvif/events_service"
	SubscriptionPath = "/onvif/subscription/"
)

// Device says what GetDeviceInformation answers.
type Device struct {
	Manufacturer, Model, Firmware string
	// Serial is the device ID (random: nothing that identifies the
	// hardware).
	Serial string
}

// Video is the stream the one media profile describes.
type Video struct {
	Width, Height, FPS int
	Bitrate            int    // bits per second
	Profile            string // H.264: Baseline, Main, Extended or High
}

// Interface is a network interface GetNetworkInterfaces lists.
type Interface struct {
	Name  string
	IPv4  []net.IPNet
	Index int
}

// Subscription is an event bus subscription (*events.Subscription).
type Subscription interface {
	Next(ctx context.Context, idle <-chan time.Time) (*events.Message, error)
	Close()
}

// Options configure a Server. Zero limits mean defaults.
type Options struct {
	Device Device
	// Verify checks a stream key's proof and returns the user it acts
	// as (pairing.Manager.VerifyKey). Required.
	Verify func(user string, proof func(secret string) bool) (string, error)
	// RTSPPort is the RTSP server's port (0: RTSP is off and
	// GetStreamUri answers a fault); RTSPPath its stream's path.
	RTSPPort int
	RTSPPath string
	// SnapshotURL is the snapshot URL for a client that reached camd at
	// host ("" : none).
	SnapshotURL func(host string) string
	// Video is the stream now (the settings may change it).
	Video func() Video
	// Keyframe asks the stream's source for a keyframe (the media
	// service's SetSynchronizationPoint) and reports whether it can be
	// asked; nil: it cannot.
	Keyframe func() bool
	// Name is the camera's name (GetHostname); Scopes its WS-Discovery
	// scopes (GetScopes).
	Name   func() string
	Scopes func() []string
	// Interfaces lists the network interfaces (GetNetworkInterfaces).
	Interfaces func() []Interface
	// Subscribe subscribes user to the event types kinds (from now on);
	// nil: no events service.
	Subscribe func(user string, kinds []string) (Subscription, error)

	// MaxBody bounds a request's body (default 64 KiB: 413 beyond).
	MaxBody int64
	// Window is how far a token's created time may be from camd's clock
	// (default 5 min, each way).
	Window time.Duration
	// MaxNonces bounds the replay cache (default 4096).
	MaxNonces int
	// MaxSubscriptions bounds PullPoint subscriptions in all (default
	// 16) and per user (MaxSubscriptionsPerUser, default 4).
	MaxSubscriptions, MaxSubscriptionsPerUser int
	// MaxTermination bounds how long a subscription lives without a
	// Renew or PullMessages (default 10 min; default asked: 1 min);
	// MaxPullTimeout bounds one PullMessages' wait (default 1 min).
	MaxTermination, MaxPullTimeout time.Duration
	// Now is the clock (time.Now).
	Now    func() time.Time
	Logger *slog.Logger
}

func (o *Options) defaults() {
	if o.MaxBody <= 0 {
		o.MaxBody = 64 << 10
	}
	if o.Window <= 0 {
		o.Window = 5 * time.Minute
	}
	if o.MaxNonces <= 0 {
		o.MaxNonces = 4096
	}
	if o.MaxSubscriptions <= 0 {
		o.MaxSubscriptions = 16
	}
	if o.MaxSubscriptionsPerUser <= 0 {
		o.MaxSubscriptionsPerUser = 4
	}
	if o.MaxTermination <= 0 {
		o.MaxTermination = 10 * time.Minute
	}
	if o.MaxPullTimeout <= 0 {
		o.MaxPullTimeout = time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Video == nil {
		o.Video = func() Video { return Video{} }
	}
	if o.Name == nil {
		o.Name = func() string { return "camd" }
	}
}

// Server is camd's ONVIF service: an http.Handler for the device, media
// and events services.
type Server struct {
	o      Options
	nonces *nonces

	mu     sync.Mutex
	subs   map[uint64]*pullPoint
	nextID uint64
	closed bool
}

// New returns a server; Close ends its subscriptions.
func New(o Options) (*Server, error) {
	if o.Verify == nil {
		return nil, errors.New("onvif: Options.Verify is required")
	}
	o.defaults()
	return &Server{o: o, nonces: newNonces(o.MaxNonces), subs: map[uint64]*pullPoint{}}, nil
}

// call is one request being answered.
type call struct {
	r      *http.Request
	req    request
	user   string // the key's user, "" before authentication
	host   string // the host the client reached camd at (no port)
	port   string // and the port
	subID  uint64 // the PullPoint the request was sent to (0: none)
	action string
}

// handler answers one action; w holds the open body.
type handler struct {
	preAuth bool // answered without a UsernameToken (Profile S's PRE_AUTH)
	answer  func(s *Server, c *call, w *writer) error
}

// ServeHTTP answers a SOAP request: POST, a SOAP 1.2 envelope of at most
// MaxBody bytes, on one of the service paths.
func (s *Server) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		rw.Header().Set("Allow", "POST")
		http.Error(rw, "onvif: POST a SOAP request", http.StatusMethodNotAllowed)
		return
	}
	c := &call{r: r}
	switch p := r.URL.Path; {
	case p == DevicePath || p == MediaPath || p == EventsPath:
	case len(p) > len(SubscriptionPath) && p[:len(SubscriptionPath)] == SubscriptionPath:
		id, err := strconv.ParseUint(p[len(SubscriptionPath):], 10, 64)
		if err != nil || id == 0 {
			http.NotFound(rw, r)
			return
		}
		c.subID = id
	default:
		http.NotFound(rw, r)
		return
	}
	body := http.MaxBytesReader(rw, r.Body, s.o.MaxBody)
	req, err := parse(body)
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		s.fault(rw, c, &fault{Sender: true, Reason: fmt.Sprintf("the request is larger than %d bytes", s.o.MaxBody)}, http.StatusRequestEntityTooLarge)
		return
	case errors.Is(err, ErrVersion):
		s.fault(rw, c, &fault{Sender: true, Subcode: []string{"ter:WrongSOAPVersion"}, Reason: "send a SOAP 1.2 envelope"}, 0)
		return
	case err != nil:
		s.fault(rw, c, &fault{Sender: true, Subcode: []string{"ter:WellFormed"}, Reason: err.Error()}, 0)
		return
	}
	c.req = req
	c.action = req.Action.Name.Local
	c.host, c.port = hostOf(r)
	h, ok := actions[req.Action.Name]
	if !ok {
		s.fault(rw, c, actionNotSupported("camd does not answer "+req.Action.Name.Space+" "+req.Action.Name.Local), 0)
		return
	}
	// A PRE_AUTH action ignores any token (libonvif sends one with an
	// empty user name before it logs in).
	if !h.preAuth {
		if f := s.authenticate(c); f != nil {
			s.fault(rw, c, f, 0)
			return
		}
	}
	w := newWriter()
	if err := h.answer(s, c, w); err != nil {
		var f *fault
		if !errors.As(err, &f) {
			f = &fault{Reason: err.Error()}
		}
		s.fault(rw, c, f, 0)
		return
	}
	reply(rw, http.StatusOK, w.bytes())
}

// reply writes an answer with its length: libonvif does not read a
// chunked answer.
func reply(rw http.ResponseWriter, status int, b []byte) {
	rw.Header().Set("Content-Type", `application/soap+xml; charset=utf-8`)
	rw.Header().Set("Content-Length", strconv.Itoa(len(b)))
	rw.WriteHeader(status)
	rw.Write(b)
}

// authenticate checks the request's UsernameToken: its shape, its
// created time against the window, the key's digest (Verify), then its
// nonce against the replay cache, in that order, so that only a valid
// key's requests fill the cache.
func (s *Server) authenticate(c *call) *fault {
	t, err := readToken(c.req.Token)
	if err == nil {
		now := s.o.Now()
		if t.When.Before(now.Add(-s.o.Window)) || t.When.After(now.Add(s.o.Window)) {
			err = ErrStale
		} else if c.user, err = s.o.Verify(t.Username, t.proves); err != nil {
			err = fmt.Errorf("%w: %w", ErrUnknownKey, err)
		} else {
			err = s.nonces.use(t.Nonce, t.When, now.Add(-s.o.Window), now, clientAddr(c.r))
		}
	}
	if err != nil {
		c.user = ""
		s.o.Logger.Info("onvif: refused", "action", c.action, "from", c.r.RemoteAddr, "user", t.Username, "err", err)
		// One reason for every refusal: a client learns nothing of which
		// check failed (the log says).
		return notAuthorized("the WS-Security UsernameToken (PasswordDigest) is missing, wrong, replayed or stale")
	}
	return nil
}

func (s *Server) fault(rw http.ResponseWriter, c *call, f *fault, status int) {
	if status == 0 {
		status = f.status()
	}
	s.o.Logger.Debug("onvif: fault", "action", c.action, "from", c.r.RemoteAddr, "reason", f.Reason)
	reply(rw, status, f.envelope())
}

// clientAddr is the client's IP address, without the port.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// hostOf is the host and port the client reached camd at (the Host
// header), for the URLs camd answers.
func hostOf(r *http.Request) (string, string) {
	host, port, err := net.SplitHostPort(r.Host)
	if err != nil {
		host, port = r.Host, "80"
	}
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); host == "" && ok {
		host, port, _ = net.SplitHostPort(a.String())
	}
	return host, port
}

// url is the address of path on the ONVIF port as the client reached it.
func (c *call) url(path string) string {
	if c.port == "80" {
		return "http://" + hostForURL(c.host) + path
	}
	return "http://" + net.JoinHostPort(c.host, c.port) + path
}

func hostForURL(h string) string {
	if ip := net.ParseIP(h); ip != nil && ip.To4() == nil {
		return "[" + h + "]"
	}
	return h
}

// Close ends every subscription. It is safe to call twice.
func (s *Server) Close() {
	s.mu.Lock()
	subs := s.subs
	s.subs, s.closed = map[uint64]*pullPoint{}, true
	s.mu.Unlock()
	for _, p := range subs {
		p.sub.Close()
	}
}
