package api

import (
	"errors"
	"net"
	"net/http"
	"strconv"

	"github.com/camd-project/camd/device/pairing"
)

// keyring makes, lists and revokes stream keys: view-only credentials
// for standard clients (docs/security.md, "Stream keys").
type keyring interface {
	AddKey(opts pairing.KeyOptions) (pairing.KeyCredential, error)
	Keys() []pairing.Key
	RevokeKey(id string) error
}

// KeyRequest is the body of POST /api/v1/keys.
type KeyRequest struct {
	// For names a paired user (name or ID) or a device.
	For string `json:"for"`
	// Scope is "view" (the default, and the only one).
	Scope string `json:"scope,omitempty"`
}

func (a *Users) handleKeys(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, a.Keys.Keys())
}

// handleAddKey makes a stream key and answers 201 with its secret: the
// only time camd shows it (it never keeps it, nor logs it).
func (a *Users) handleAddKey(w http.ResponseWriter, r *http.Request) {
	var req KeyRequest
	if !decode(w, r, &req) {
		return
	}
	k, err := a.Keys.AddKey(pairing.KeyOptions{For: req.For, Scope: req.Scope, By: UserFrom(r.Context()).ID})
	if err != nil {
		if !fieldError(w, err) {
			jsonError(w, http.StatusInternalServerError, err.Error())
		}
		return
	}
	answer := struct {
		pairing.KeyCredential
		// RTSP is the live stream's URL with the key in it, when the RTSP
		// server is on.
		RTSP string `json:"rtsp,omitempty"`
	}{KeyCredential: k}
	if a.RTSPPort > 0 {
		host := r.Host
		if h, _, err := net.SplitHostPort(r.Host); err == nil {
			host = h
		}
		answer.RTSP = "rtsp://" + k.ID + ":" + k.Secret + "@" + net.JoinHostPort(host, strconv.Itoa(a.RTSPPort)) + RTSPPath
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	writeJSON(w, answer)
}

// RTSPPath is the path of the live stream on the RTSP server.
const RTSPPath = "/live"

func (a *Users) handleRevokeKey(w http.ResponseWriter, r *http.Request) {
	if err := a.Keys.RevokeKey(r.PathValue("id")); err != nil {
		code := http.StatusInternalServerError
		if errors.Is(err, pairing.ErrNoKey) {
			code = http.StatusNotFound
		}
		jsonError(w, code, err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
