package api

import (
	"encoding/json"
	"errors"
	"log/slog"
	"mime"
	"net/http"

	"github.com/camd-project/camd/device/pairing"
	"github.com/camd-project/camd/device/settings"
)

// Settings is the owner's settings: read them all, change some of them
// together or not at all (docs/architecture.md, "Settings and the board").
type Settings struct {
	Store  settingsStore
	Logger *slog.Logger
}

// settingsReader gives the settings in force.
type settingsReader interface{ Get() settings.Settings }

// settingsStore stores a change and applies it (the daemon's settings).
type settingsStore interface {
	settingsReader
	// Change stores a JSON merge patch and applies it; it fails with a
	// *settings.FieldError for a refused value.
	Change(patch map[string]json.RawMessage) (settings.Settings, error)
}

func (a *Settings) routes() []Route {
	return []Route{
		{"GET /api/v1/settings", Owner, a.handleGet},
		{"PATCH /api/v1/settings", Owner, a.handlePatch},
	}
}

func (a *Settings) handleGet(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, a.Store.Get())
}

// handlePatch changes the settings named in a JSON object (a merge patch:
// null restores a default), all or none.
func (a *Settings) handlePatch(w http.ResponseWriter, r *http.Request) {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != "" && ct != "application/json" && ct != "application/merge-patch+json" {
		jsonError(w, http.StatusUnsupportedMediaType, "settings: send application/json or application/merge-patch+json")
		return
	}
	var patch map[string]json.RawMessage
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	if err := dec.Decode(&patch); err != nil || patch == nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			jsonError(w, http.StatusRequestEntityTooLarge, "settings: body larger than 64 KiB")
			return
		}
		jsonError(w, http.StatusBadRequest, "settings: want a JSON object of settings, e.g. {\"mute\": true}")
		return
	}
	after, err := a.Store.Change(patch)
	switch {
	case fieldError(w, err):
		return
	case err != nil:
		a.Logger.Error("camd: settings not stored", "err", err)
		jsonError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, after)
}

// fieldError answers 422 with {"error", "field", "value", "allowed"}
// when err is a value that is not allowed, and reports whether it did.
func fieldError(w http.ResponseWriter, err error) bool {
	var field, value, allowed string
	var sf *settings.FieldError
	var pf *pairing.FieldError
	switch {
	case errors.As(err, &sf):
		field, value, allowed = sf.Field, sf.Value, sf.Allowed
	case errors.As(err, &pf):
		field, value, allowed = pf.Field, pf.Value, pf.Allowed
	default:
		return false
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusUnprocessableEntity)
	json.NewEncoder(w).Encode(map[string]any{
		"error": err.Error(), "field": field, "value": json.RawMessage(jsonOrString(value)), "allowed": allowed,
	})
	return true
}

// jsonOrString keeps a valid JSON value as is and quotes anything else.
func jsonOrString(v string) string {
	if json.Valid([]byte(v)) {
		return v
	}
	b, _ := json.Marshal(v)
	return string(b)
}
