package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strings"

	"github.com/camd-project/camd/device/pairing"
)

// Role says who may call a route.
type Role int

// Roles, from least to most privileged.
const (
	// Public routes answer anyone: the health check, the web page's static
	// files (they hold no data) and the pairing exchange.
	Public Role = iota
	// Stream routes are live view: they take a paired credential or a
	// stream key (bearer, or HTTP Basic with the key's ID and secret):
	// WHEP, snapshot.jpg, MJPEG.
	Stream
	// Viewer routes need a paired credential: recordings, snapshots,
	// events. A stream key gets 403.
	Viewer
	// Owner routes change the device.
	Owner
)

func (r Role) String() string {
	return [...]string{"public", "stream", "viewer", "owner"}[r]
}

// Route is one entry of the HTTP API. Every handler is registered through
// the routes table so that authorization covers routes added later.
type Route struct {
	Pattern string // an http.ServeMux pattern: "METHOD /path"
	Role    Role
	handler http.HandlerFunc
}

// authenticator checks a bearer credential, or a stream key's ID and
// secret (*pairing.Manager).
type authenticator interface {
	Authenticate(token string) (pairing.User, error)
	AuthenticateKey(id, secret string) (pairing.User, error)
}

// API is every feature's handlers behind one credential check. Every
// field is required but Origins.
type API struct {
	// Credentials checks the credential of every route but the public ones.
	Credentials authenticator
	Logger      *slog.Logger
	// Origins returns the web origins ("https://ha.example:8123") whose
	// pages may call the viewer API from a browser (CORS), asked at each
	// request; nil allows none.
	Origins func() []string

	Web        *Web
	Pairing    *Pairing
	Users      *Users
	Live       *Live
	Recordings *Recordings
	Snapshots  *Snapshots
	Events     *Events
	Settings   *Settings
	Storage    *Storage
	Update     *Update
	Push       *Push
	Webhooks   *Webhooks
	Network    *Network
	Logs       *Logs
	Crashes    *Crashes
	Metrics    *Metrics
	Calls      *Calls
	Discovered *Discovered
	Cameras    *Cameras
}

// Routes is every route camd serves, gathered from each feature's group.
// A feature adds its group here and nowhere else.
func (a *API) Routes() []Route {
	return slices.Concat(
		a.Web.routes(),
		a.Pairing.routes(),
		a.Users.routes(),
		a.Live.routes(),
		a.Recordings.routes(),
		a.Snapshots.routes(),
		a.Events.routes(),
		a.Settings.routes(),
		a.Storage.routes(),
		a.Update.routes(),
		a.Push.routes(),
		a.Webhooks.routes(),
		a.Network.routes(),
		a.Logs.routes(),
		a.Crashes.routes(),
		a.Metrics.routes(),
		a.Calls.routes(),
		a.Discovered.routes(),
		a.Cameras.routes(),
	)
}

// Handler serves the routes table.
func (a *API) Handler() http.Handler {
	return a.Metrics.acceptMetricsToken(serve(a.Credentials, a.Logger, a.Routes(), a.Origins))
}

// serve builds the HTTP handler of a routes table, with CORS for the
// allowed origins.
func serve(auth authenticator, log *slog.Logger, routes []Route, origins func() []string) http.Handler {
	mux := http.NewServeMux()
	roles := make(map[string]Role, len(routes))
	for _, r := range routes {
		mux.Handle(r.Pattern, authorize(auth, log, r.Role, r.handler))
		roles[r.Pattern] = r.Role
	}
	return securityHeaders(cors(origins, mux, roles, mux))
}

func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Content-Security-Policy", "default-src 'self'; media-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'")
		hd.Set("Cache-Control", "no-store")
		// camd serves only HTTPS: a browser that reached it once must
		// not be talked down to plain HTTP by a LAN attacker.
		hd.Set("Strict-Transport-Security", "max-age=31536000")
		h.ServeHTTP(w, r)
	})
}

type userKey struct{}

// UserFrom returns the user that the credential check let through: the
// WHEP server uses it to know whose session a request is about.
func UserFrom(ctx context.Context) pairing.User {
	u, _ := ctx.Value(userKey{}).(pairing.User)
	return u
}

// authorize guards a route by role: Public routes answer anyone (a
// valid credential that comes along names its user to the handler, as
// OPTIONS on the WHEP endpoint needs); the others need a paired
// credential (Authorization: Bearer), and Owner routes the owner role.
// A stream key (bearer, or Basic on Stream routes) opens only Stream
// routes.
func authorize(auth authenticator, log *slog.Logger, role Role, h http.HandlerFunc) http.Handler {
	if role == Public {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
				if u, err := auth.Authenticate(strings.TrimSpace(token)); err == nil {
					r = r.WithContext(context.WithValue(r.Context(), userKey{}, u))
				}
			}
			h(w, r)
		})
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, err := credential(auth, r, role == Stream)
		if err != nil {
			if role == Stream {
				w.Header().Add("WWW-Authenticate", `Basic realm="camd", charset="UTF-8"`)
			}
			w.Header().Add("WWW-Authenticate", `Bearer realm="camd"`)
			if !errors.Is(err, pairing.ErrNoCredential) {
				log.Info("camd: credential refused", "path", r.URL.Path, "remote", r.RemoteAddr, "why", err)
			}
			jsonError(w, http.StatusUnauthorized, err.Error())
			return
		}
		switch {
		case u.Key != "" && role != Stream:
			jsonError(w, http.StatusForbidden, pairing.ErrKeyScope.Error())
			return
		case role == Owner && u.Role != pairing.Owner:
			jsonError(w, http.StatusForbidden, "camd: this needs the owner role")
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), userKey{}, u)))
	})
}

// credential checks the request's credential: a bearer token, or with
// basic, HTTP Basic with a stream key's ID and secret (what Home
// Assistant's generic camera and NVRs send for a snapshot or MJPEG URL).
func credential(auth authenticator, r *http.Request, basic bool) (pairing.User, error) {
	if id, secret, ok := r.BasicAuth(); ok && basic {
		return auth.AuthenticateKey(id, secret)
	}
	token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return auth.Authenticate(strings.TrimSpace(token))
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func jsonError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// decode reads a small JSON body.
//
// The body must say it is application/json: a page on another origin can
// POST text/plain or a form without asking (no CORS preflight), but not
// JSON, so the public pairing routes cannot be driven from a web page the
// owner happens to visit.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		jsonError(w, http.StatusUnsupportedMediaType, "camd: send the body as application/json")
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		jsonError(w, http.StatusBadRequest, "camd: bad request body: "+err.Error())
		return false
	}
	return true
}
