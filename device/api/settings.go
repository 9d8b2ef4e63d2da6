package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"

	"github.com/camd-project/camd/device/pairing"
	"github.com/camd-project/camd/device/settings"
	"github.com/camd-project/camd/internal/fielderr"
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
	// Change stores a JSON merge patch that the user by asked for and
	// applies it; it fails with a *fielderr.Error for a refused value.
	Change(patch map[string]json.RawMessage, by pairing.User) (settings.Settings, error)
}

func (a *Settings) routes() []Route {
	return []Route{
		{"GET /api/v1/settings", Owner, a.handleGet},
		{"PATCH /api/v1/settings", Owner, a.handlePatch},
	}
}

// handleGet answers the settings without the WHIP token
// (settings.Settings.Redacted).
func (a *Settings) handleGet(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, a.Store.Get().Redacted())
}

// handlePatch changes the settings named in a JSON object (a merge patch:
// null restores a default), all or none.
func (a *Settings) handlePatch(w http.ResponseWriter, r *http.Request) {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != "" && ct != "application/json" && ct != "application/merge-patch+json" {
		jsonError(w, http.StatusUnsupportedMediaType, "settings: send application/json or application/merge-patch+json")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		jsonError(w, http.StatusRequestEntityTooLarge, "settings: body larger than 64 KiB")
		return
	}
	var patch map[string]json.RawMessage
	if err == nil {
		err = strictObject(body)
	}
	if err == nil {
		err = json.Unmarshal(body, &patch)
	}
	if err != nil || patch == nil {
		msg := "settings: want a JSON object of settings, e.g. {\"mute\": true}"
		if err != nil {
			msg += ": " + err.Error()
		}
		jsonError(w, http.StatusBadRequest, msg)
		return
	}
	after, err := a.Store.Change(patch, UserFrom(r.Context()))
	switch {
	case fieldError(w, err):
		return
	case err != nil:
		a.Logger.Error("camd: settings not stored", "err", err)
		jsonError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, after.Redacted())
}

// strictObject checks that b is one JSON object and nothing after it,
// with no key twice in any object: what encoding/json would read with
// the last of two keys winning, or with bytes after the value ignored,
// is refused, so that what the owner's app meant and what camd stored
// cannot differ.
func strictObject(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok != json.Delim('{') {
		return errors.New("not an object")
	}
	if err := strictRest(dec, '{'); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the object")
	}
	return nil
}

// strictRest reads the rest of an object or array whose opening delim
// was read, refusing duplicate keys.
func strictRest(dec *json.Decoder, delim json.Delim) error {
	seen := map[string]bool{}
	for dec.More() {
		if delim == '{' {
			tok, err := dec.Token()
			if err != nil {
				return err
			}
			key := tok.(string)
			if seen[key] {
				return fmt.Errorf("key %q given twice", key)
			}
			seen[key] = true
		}
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		if d, ok := tok.(json.Delim); ok {
			if err := strictRest(dec, d); err != nil {
				return err
			}
		}
	}
	_, err := dec.Token() // the closing delim
	return err
}

// fieldError answers 422 with {"error", "field", "value", "allowed"}
// when err is a value that is not allowed, and reports whether it did.
func fieldError(w http.ResponseWriter, err error) bool {
	fe, ok := fielderr.As(err)
	if !ok {
		return false
	}
	field, value, allowed := fe.Field, fe.Value, fe.Allowed
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
