package device

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/camd-project/camd/device/pairing"
)

// Paired reports whether any user is paired.
func (d *Daemon) Paired() bool { return d.pairing.Paired() }

// SetupPayload is the setup pairing code, for the device's own terminal
// or screen only: it carries the secret.
func (d *Daemon) SetupPayload() string { return d.pairing.SetupPayload(d.hostHintFor()).String() }

func (d *Daemon) pairingRoutes() []route {
	return []route{
		{"POST /api/v1/pair/start", Public, d.handlePairStart},
		{"POST /api/v1/pair/finish", Public, d.handlePairFinish},
		{"POST /api/v1/pair/window", Owner, d.handlePairWindow},
		{"GET /api/v1/me", Viewer, d.handleMe},
		{"GET /api/v1/users", Owner, d.handleUsers},
		{"POST /api/v1/users/invite", Owner, d.handleInvite},
		{"PATCH /api/v1/users/{id}", Owner, d.handleRename},
		{"DELETE /api/v1/users/{id}", Owner, d.handleRevoke},
	}
}

type userKey struct{}

// userFrom returns the user that authorize let through.
func userFrom(ctx context.Context) pairing.User {
	u, _ := ctx.Value(userKey{}).(pairing.User)
	return u
}

// authorize guards a route by role: Public routes answer anyone; the
// others need a paired credential (Authorization: Bearer), and Owner
// routes the owner role.
func (d *Daemon) authorize(role Role, h http.HandlerFunc) http.Handler {
	if role == Public {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		u, err := d.pairing.Authenticate(strings.TrimSpace(token))
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="camd"`)
			if !errors.Is(err, pairing.ErrNoCredential) {
				d.log.Info("camd: credential refused", "path", r.URL.Path, "remote", r.RemoteAddr, "why", err)
			}
			jsonError(w, http.StatusUnauthorized, err.Error())
			return
		}
		if role == Owner && u.Role != pairing.Owner {
			jsonError(w, http.StatusForbidden, "camd: this needs the owner role")
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), userKey{}, u)))
	})
}

func jsonError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// decode reads a small JSON body.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		jsonError(w, http.StatusBadRequest, "camd: bad request body: "+err.Error())
		return false
	}
	return true
}

// pairStatus maps pairing errors to HTTP answers.
func pairStatus(err error) int {
	switch {
	case errors.Is(err, pairing.ErrRetryLater):
		return http.StatusTooManyRequests
	case errors.Is(err, pairing.ErrLocked):
		return http.StatusLocked
	case errors.Is(err, pairing.ErrWindowClosed):
		return http.StatusForbidden
	case errors.Is(err, pairing.ErrBadName), errors.Is(err, pairing.ErrNoUser):
		return http.StatusBadRequest
	case errors.Is(err, pairing.ErrBadProof), errors.Is(err, pairing.ErrBadNonce), errors.Is(err, pairing.ErrBadInvite):
		return http.StatusUnauthorized
	}
	return http.StatusInternalServerError
}

// pairError answers a refused pairing request, with Retry-After when the
// client must wait.
func pairError(w http.ResponseWriter, err error) {
	if after, ok := pairing.RetryAfter(err); ok {
		w.Header().Set("Retry-After", strconv.Itoa(int(after/time.Second)))
	}
	jsonError(w, pairStatus(err), err.Error())
}

// remoteAddr is the client's IP address.
func remoteAddr(r *http.Request) netip.Addr {
	ap, _ := netip.ParseAddrPort(r.RemoteAddr)
	return ap.Addr()
}

// PairStart is the body of POST /api/v1/pair/start.
type PairStart struct {
	InviteID string `json:"invite_id,omitempty"`
}

// PairStarted answers it.
type PairStarted struct {
	Nonce    []byte `json:"nonce"`
	DeviceID string `json:"device_id"`
}

func (d *Daemon) handlePairStart(w http.ResponseWriter, r *http.Request) {
	var req PairStart
	if !decode(w, r, &req) {
		return
	}
	nonce, err := d.pairing.Start(req.InviteID, remoteAddr(r))
	if err != nil {
		pairError(w, err)
		return
	}
	writeJSON(w, PairStarted{Nonce: nonce, DeviceID: d.id.ID})
}

// PairFinish is the body of POST /api/v1/pair/finish.
type PairFinish struct {
	Nonce    []byte `json:"nonce"`
	Name     string `json:"name"`
	Proof    []byte `json:"proof"`
	InviteID string `json:"invite_id,omitempty"`
}

// Paired answers it: the credential, shown once.
type Paired struct {
	UserID   string       `json:"user_id"`
	Role     pairing.Role `json:"role"`
	Token    string       `json:"token"`
	DeviceID string       `json:"device_id"`
}

func (d *Daemon) handlePairFinish(w http.ResponseWriter, r *http.Request) {
	var req PairFinish
	if !decode(w, r, &req) {
		return
	}
	u, token, err := d.pairing.Finish(pairing.FinishRequest{Nonce: req.Nonce, Name: req.Name, Proof: req.Proof, InviteID: req.InviteID, From: remoteAddr(r)})
	if err != nil {
		pairError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	json.NewEncoder(w).Encode(Paired{UserID: u.ID, Role: u.Role, Token: token, DeviceID: d.id.ID})
}

func (d *Daemon) handlePairWindow(w http.ResponseWriter, _ *http.Request) {
	if err := d.pairing.OpenWindow(); err != nil {
		jsonError(w, pairStatus(err), err.Error())
		return
	}
	_, until, _ := d.pairing.Window()
	writeJSON(w, map[string]any{"open_until": until})
}

func (d *Daemon) handleMe(w http.ResponseWriter, r *http.Request) {
	u := userFrom(r.Context())
	u.TokenHash = nil
	writeJSON(w, map[string]any{"user": u, "device_id": d.id.ID, "name": d.Settings().Name})
}

func (d *Daemon) handleUsers(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, d.pairing.Users())
}

// InviteRequest is the body of POST /api/v1/users/invite.
type InviteRequest struct {
	Role pairing.Role `json:"role"`
	// Valid and Access are Go durations ("24h"); Access limits the
	// invited user's access (empty: until revoked).
	Valid  string `json:"valid,omitempty"`
	Access string `json:"access,omitempty"`
}

func (d *Daemon) handleInvite(w http.ResponseWriter, r *http.Request) {
	req := InviteRequest{Role: pairing.Viewer}
	if !decode(w, r, &req) {
		return
	}
	opts := pairing.InviteOptions{Role: req.Role, By: userFrom(r.Context()).ID}
	for _, f := range []struct {
		s   string
		dst *time.Duration
	}{{req.Valid, &opts.Valid}, {req.Access, &opts.Access}} {
		if f.s == "" {
			continue
		}
		v, err := time.ParseDuration(f.s)
		if err != nil || v <= 0 {
			jsonError(w, http.StatusBadRequest, fmt.Sprintf("camd: duration %q: want e.g. 30m or 24h", f.s))
			return
		}
		*f.dst = v
	}
	p, err := d.pairing.Invite(opts, d.hostHint(r))
	if err != nil {
		jsonError(w, http.StatusBadRequest, err.Error())
		return
	}
	// The invitation's secret goes to the owner who asked, over TLS; it
	// is one-time and never logged.
	writeJSON(w, map[string]any{"payload": p.String(), "invite_id": pairing.InviteID(p.Secret[:]), "link": "https://" + r.Host + "/#pair=" + p.String()})
}

// hostHintFor is the address to put in a payload shown on the device: its
// listen address unless that is unspecified.
func (d *Daemon) hostHintFor() netip.AddrPort {
	ap, err := netip.ParseAddrPort(d.tcp.Addr().String())
	if err != nil || ap.Addr().IsUnspecified() {
		return netip.AddrPort{}
	}
	return ap
}

// hostHint is the address a client reached the device at.
func (d *Daemon) hostHint(r *http.Request) netip.AddrPort {
	if a, err := netip.ParseAddrPort(r.Host); err == nil {
		return a
	}
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if ap, err := netip.ParseAddrPort(a.String()); err == nil {
			return ap
		}
	}
	return netip.AddrPort{}
}

func (d *Daemon) handleRename(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name string `json:"name"`
	}
	if !decode(w, r, &req) {
		return
	}
	if err := d.pairing.Rename(r.PathValue("id"), req.Name); err != nil {
		jsonError(w, pairStatus(err), err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (d *Daemon) handleRevoke(w http.ResponseWriter, r *http.Request) {
	if err := d.pairing.Revoke(r.PathValue("id")); err != nil {
		code := pairStatus(err)
		if errors.Is(err, pairing.ErrNoUser) {
			code = http.StatusNotFound
		}
		jsonError(w, code, err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
