package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/camd-project/camd/storage/card"
	"github.com/camd-project/camd/storage/recordings"
)

// Storage is the card the recordings go to (docs/storage.md, "The card
// is a mount"): the owner checks and repairs it, or formats it. Its
// state is in GET /api/v1/recordings/status. Recording pauses while
// either runs; live view does not.
type Storage struct {
	// Card is nil when the recordings are not on a card
	// (recording.require_mount is off).
	Card cardOps
}

// cardOps checks and formats the card (the daemon's).
type cardOps interface {
	// Device is the card's block device ("" if none was seen).
	Device() string
	Check(ctx context.Context) (card.Result, error)
	// Format formats the card if device is still its device.
	Format(ctx context.Context, device string) (card.Result, error)
}

func (a *Storage) routes() []Route {
	return []Route{
		{"POST /api/v1/storage/check", Owner, a.handleCheck},
		{"POST /api/v1/storage/format", Owner, a.handleFormat},
	}
}

// FormatRequest is the body of POST /api/v1/storage/format: Confirm must
// be "format " and the card's device, as the status shows it.
type FormatRequest struct {
	Confirm string `json:"confirm"`
}

// ready answers 409 when there is no card to work on.
func (a *Storage) ready(w http.ResponseWriter) bool {
	if a.Card == nil {
		jsonError(w, http.StatusConflict, "storage: the recordings are not on a card (recording.require_mount is off)")
		return false
	}
	return true
}

// handleCheck unmounts the card, runs the check and repair command on
// it, mounts it again and answers what the command said (card.Result).
func (a *Storage) handleCheck(w http.ResponseWriter, r *http.Request) {
	var body struct{}
	if !a.ready(w) || !decode(w, r, &body) {
		return
	}
	res, err := a.Card.Check(r.Context())
	answerCardOp(w, res, err)
}

// handleFormat formats the card, once the owner confirmed which.
func (a *Storage) handleFormat(w http.ResponseWriter, r *http.Request) {
	var req FormatRequest
	if !a.ready(w) || !decode(w, r, &req) {
		return
	}
	dev := a.Card.Device()
	if dev == "" {
		jsonError(w, http.StatusConflict, card.ErrUnknown.Error())
		return
	}
	if req.Confirm != "format "+dev {
		jsonError(w, http.StatusBadRequest, `storage: formatting erases everything on the card: confirm with {"confirm": "format `+dev+`"}`)
		return
	}
	res, err := a.Card.Format(r.Context(), dev)
	answerCardOp(w, res, err)
}

// answerCardOp answers what a check or format did: 200 with the result
// once the command ran (whatever it found), 409 when it could not run
// (no card, busy, cannot unmount: the result says what was tried).
func answerCardOp(w http.ResponseWriter, res card.Result, err error) {
	switch {
	case err == nil:
		writeJSON(w, res)
		return
	case errors.Is(err, recordings.ErrBusy), errors.Is(err, card.ErrNoCard), errors.Is(err, card.ErrUnknown),
		errors.Is(err, card.ErrNotDevice), errors.Is(err, card.ErrUnmount), errors.Is(err, card.ErrNoCommand):
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusConflict)
		json.NewEncoder(w).Encode(struct {
			Error string `json:"error"`
			card.Result
		}{err.Error(), res})
		return
	}
	jsonError(w, http.StatusInternalServerError, err.Error())
}
