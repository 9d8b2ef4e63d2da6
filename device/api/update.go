package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/camd-project/camd/update"
)

// Update is software updates (docs/updates.md): the owner sees what the
// signed feed offers, checks now, and approves an update. Checking is
// off until the owner turns on the update_check setting.
type Update struct {
	// Updater is nil when camd has no updater.
	Updater updater // *update.Updater
}

// updater checks the feed and applies what it offers.
type updater interface {
	Status() update.Status
	Check(ctx context.Context) (update.Status, error)
	Apply(version string) error
}

func (a *Update) routes() []Route {
	return []Route{
		{"GET /api/v1/update", Owner, a.handleStatus},
		{"POST /api/v1/update/check", Owner, a.handleCheck},
		{"POST /api/v1/update/apply", Owner, a.handleApply},
	}
}

// ApplyRequest is the body of POST /api/v1/update/apply: the version the
// owner approves, as GET /api/v1/update offered it.
type ApplyRequest struct {
	Version string `json:"version"`
}

// RefusedAnswer is the body of a check whose feed was refused or could
// not be read (502): the error, and why it was refused (update.Reason:
// signature, expired, replayed, downgrade, product, malformed; "" when
// the server could not be reached).
type RefusedAnswer struct {
	Error  string `json:"error"`
	Reason string `json:"reason,omitempty"`
}

func (a *Update) ready(w http.ResponseWriter) bool {
	if a.Updater == nil {
		jsonError(w, http.StatusServiceUnavailable, "update: not available")
		return false
	}
	return true
}

// handleStatus answers update.Status: checking on or off, the version
// running, the update offered (version, notes, size), a download's
// progress, an update waiting for its health check.
func (a *Update) handleStatus(w http.ResponseWriter, r *http.Request) {
	if a.ready(w) {
		writeJSON(w, a.Updater.Status())
	}
}

// handleCheck checks the feed now: 200 with the status; 409 while
// checking is off, or without a feed or keys; 502 when the feed is
// refused or cannot be read.
func (a *Update) handleCheck(w http.ResponseWriter, r *http.Request) {
	var body struct{}
	if !a.ready(w) || !decode(w, r, &body) {
		return
	}
	st, err := a.Updater.Check(r.Context())
	switch {
	case err == nil:
		writeJSON(w, st)
	case errors.Is(err, update.ErrOff), errors.Is(err, update.ErrNoFeed), errors.Is(err, update.ErrNoKeys):
		jsonError(w, http.StatusConflict, err.Error())
	default:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadGateway)
		writeJSON(w, RefusedAnswer{Error: err.Error(), Reason: update.Reason(err)})
	}
}

// handleApply starts applying the offered update, which must be the
// version approved: 202 with the status (follow it with GET); 409 when
// nothing is offered, another version is, or an update is under way.
func (a *Update) handleApply(w http.ResponseWriter, r *http.Request) {
	var req ApplyRequest
	if !a.ready(w) || !decode(w, r, &req) {
		return
	}
	if req.Version == "" {
		jsonError(w, http.StatusBadRequest, `update: say which version you approve: {"version": "…"}`)
		return
	}
	if err := a.Updater.Apply(req.Version); err != nil {
		jsonError(w, http.StatusConflict, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	writeJSON(w, a.Updater.Status())
}
