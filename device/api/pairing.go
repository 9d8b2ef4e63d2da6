package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/skip2/go-qrcode"

	"github.com/camd-project/camd/device/pairing"
)

// Pairing is the pairing exchange (docs/pairing.md) and the owner's
// opening of the pairing window.
type Pairing struct {
	Exchange exchange      // *pairing.Manager
	Window   pairingWindow // *pairing.Manager
	DeviceID string
}

// exchange pairs a phone: Start gives a nonce, Finish checks the proof
// and makes the user.
type exchange interface {
	Start(inviteID string, from netip.Addr) (nonce []byte, err error)
	Finish(pairing.FinishRequest) (u pairing.User, token string, err error)
}

// pairingWindow opens pairing for a while and reports until when.
type pairingWindow interface {
	OpenWindow() error
	Window() (open bool, until time.Time, locked bool)
}

func (a *Pairing) routes() []Route {
	return []Route{
		{"POST /api/v1/pair/start", Public, a.handleStart},
		{"POST /api/v1/pair/finish", Public, a.handleFinish},
		{"POST /api/v1/pair/window", Owner, a.handleWindow},
	}
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

func (a *Pairing) handleStart(w http.ResponseWriter, r *http.Request) {
	var req PairStart
	if !decode(w, r, &req) {
		return
	}
	nonce, err := a.Exchange.Start(req.InviteID, remoteAddr(r))
	if err != nil {
		pairError(w, err)
		return
	}
	writeJSON(w, PairStarted{Nonce: nonce, DeviceID: a.DeviceID})
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

func (a *Pairing) handleFinish(w http.ResponseWriter, r *http.Request) {
	var req PairFinish
	if !decode(w, r, &req) {
		return
	}
	u, token, err := a.Exchange.Finish(pairing.FinishRequest{Nonce: req.Nonce, Name: req.Name, Proof: req.Proof, InviteID: req.InviteID, From: remoteAddr(r)})
	if err != nil {
		if !fieldError(w, err) {
			pairError(w, err)
		}
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	json.NewEncoder(w).Encode(Paired{UserID: u.ID, Role: u.Role, Token: token, DeviceID: a.DeviceID})
}

func (a *Pairing) handleWindow(w http.ResponseWriter, _ *http.Request) {
	if err := a.Window.OpenWindow(); err != nil {
		jsonError(w, pairStatus(err), err.Error())
		return
	}
	_, until, _ := a.Window.Window()
	writeJSON(w, map[string]any{"open_until": until})
}

// Users is who may use the camera: the caller's own account, and the
// owner's list, invitations, renames and revocations.
type Users struct {
	Accounts accounts // *pairing.Manager
	Invites  inviter  // *pairing.Manager
	Keys     keyring  // *pairing.Manager
	// RTSPPort is the RTSP server's port, for the URL a new key is shown
	// with (0: the RTSP server is off).
	RTSPPort int
	Settings settingsReader // the device's name
	DeviceID string
}

// accounts lists, renames and revokes users.
type accounts interface {
	Users() []pairing.User
	Rename(id, name string) error
	Revoke(id string) error
}

// inviter makes, lists and cancels invitations: one-time pairing
// payloads for new users.
type inviter interface {
	Invite(opts pairing.InviteOptions, host netip.AddrPort) (pairing.Payload, error)
	Invitations() []pairing.Invitation
	CancelInvitation(id string) error
}

func (a *Users) routes() []Route {
	return []Route{
		{"GET /api/v1/me", Viewer, a.handleMe},
		{"GET /api/v1/users", Owner, a.handleList},
		{"POST /api/v1/users/invite", Owner, a.handleInvite},
		{"GET /api/v1/users/invitations", Owner, a.handleInvitations},
		{"DELETE /api/v1/users/invitations/{id}", Owner, a.handleCancelInvitation},
		{"PATCH /api/v1/users/{id}", Owner, a.handleRename},
		{"DELETE /api/v1/users/{id}", Owner, a.handleRevoke},
		{"GET /api/v1/keys", Owner, a.handleKeys},
		{"POST /api/v1/keys", Owner, a.handleAddKey},
		{"DELETE /api/v1/keys/{id}", Owner, a.handleRevokeKey},
	}
}

func (a *Users) handleMe(w http.ResponseWriter, r *http.Request) {
	u := UserFrom(r.Context())
	u.TokenHash = nil
	writeJSON(w, map[string]any{"user": u, "device_id": a.DeviceID, "name": a.Settings.Get().Name})
}

func (a *Users) handleList(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, a.Accounts.Users())
}

// InviteRequest is the body of POST /api/v1/users/invite.
type InviteRequest struct {
	Role pairing.Role `json:"role"`
	// Valid and Access are Go durations ("24h"); Access limits the
	// invited user's access (empty: until revoked).
	Valid  string `json:"valid,omitempty"`
	Access string `json:"access,omitempty"`
}

func (a *Users) handleInvite(w http.ResponseWriter, r *http.Request) {
	req := InviteRequest{Role: pairing.Viewer}
	if !decode(w, r, &req) {
		return
	}
	opts := pairing.InviteOptions{Role: req.Role, By: UserFrom(r.Context()).ID}
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
	p, err := a.Invites.Invite(opts, hostHint(r))
	if err != nil {
		if !fieldError(w, err) {
			jsonError(w, http.StatusInternalServerError, err.Error())
		}
		return
	}
	// The invitation's secret goes to the owner who asked, over TLS; it
	// is one-time and never logged.
	link := "https://" + r.Host + "/#pair=" + p.String()
	writeJSON(w, map[string]any{"payload": p.String(), "invite_id": pairing.InviteID(p.Secret[:]), "link": link, "qr": qrRows(link)})
}

// qrRows is text's QR code (medium error correction, no quiet zone) as
// rows of "1" (dark) and "0" (light), for the app to draw on screen
// without a QR library; nil if text does not fit in one.
func qrRows(text string) []string {
	q, err := qrcode.New(text, qrcode.Medium)
	if err != nil {
		return nil
	}
	q.DisableBorder = true
	var rows []string
	for _, row := range q.Bitmap() {
		b := make([]byte, len(row))
		for i, dark := range row {
			b[i] = '0'
			if dark {
				b[i] = '1'
			}
		}
		rows = append(rows, string(b))
	}
	return rows
}

// handleInvitations lists the invitations that can still be used.
func (a *Users) handleInvitations(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, a.Invites.Invitations())
}

func (a *Users) handleCancelInvitation(w http.ResponseWriter, r *http.Request) {
	if err := a.Invites.CancelInvitation(r.PathValue("id")); err != nil {
		code := http.StatusInternalServerError
		if errors.Is(err, pairing.ErrNoInvite) {
			code = http.StatusNotFound
		}
		jsonError(w, code, err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// hostHint is the address a client reached the device at.
func hostHint(r *http.Request) netip.AddrPort {
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

func (a *Users) handleRename(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name string `json:"name"`
	}
	if !decode(w, r, &req) {
		return
	}
	if err := a.Accounts.Rename(r.PathValue("id"), req.Name); err != nil {
		if fieldError(w, err) {
			return
		}
		jsonError(w, pairStatus(err), err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *Users) handleRevoke(w http.ResponseWriter, r *http.Request) {
	if err := a.Accounts.Revoke(r.PathValue("id")); err != nil {
		code := pairStatus(err)
		if errors.Is(err, pairing.ErrNoUser) {
			code = http.StatusNotFound
		}
		jsonError(w, code, err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
