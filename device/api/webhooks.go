package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/camd-project/camd/notify/webhooks"
)

// Webhooks are the owner's signed HTTP callbacks (docs/push.md).
type Webhooks struct {
	// Sink is nil when camd has no webhooks.
	Sink webhookSink // *webhooks.Sink
}

// webhookSink keeps the hooks and sends to them (*webhooks.Sink).
type webhookSink interface {
	List() ([]webhooks.Hook, error)
	Add(url string, types []string) (webhooks.Hook, error)
	Remove(id string) error
	Test(ctx context.Context, id string) (webhooks.Attempt, error)
	Deliveries(id string) ([]webhooks.Attempt, error)
}

func (a *Webhooks) routes() []Route {
	return []Route{
		{"GET /api/v1/webhooks", Owner, a.handleList},
		{"POST /api/v1/webhooks", Owner, a.handleAdd},
		{"DELETE /api/v1/webhooks/{id}", Owner, a.handleRemove},
		{"POST /api/v1/webhooks/{id}/test", Owner, a.handleTest},
		{"GET /api/v1/webhooks/{id}/deliveries", Owner, a.handleDeliveries},
	}
}

// WebhookRequest is the body of POST /api/v1/webhooks.
type WebhookRequest struct {
	URL string `json:"url"`
	// Types are the event types it gets ("family.*" for a family);
	// none: every type.
	Types []string `json:"types,omitempty"`
}

func (a *Webhooks) ready(w http.ResponseWriter) bool {
	if a.Sink == nil {
		jsonError(w, http.StatusServiceUnavailable, "webhooks: not available")
		return false
	}
	return true
}

func (a *Webhooks) handleList(w http.ResponseWriter, r *http.Request) {
	if !a.ready(w) {
		return
	}
	hooks, err := a.Sink.List()
	if err != nil {
		jsonError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if hooks == nil {
		hooks = []webhooks.Hook{}
	}
	writeJSON(w, hooks)
}

// handleAdd configures a hook: 201 with it and its secret (shown this
// once); 422 for a URL or a type refused; 409 past webhooks.MaxHooks.
func (a *Webhooks) handleAdd(w http.ResponseWriter, r *http.Request) {
	var req WebhookRequest
	if !a.ready(w) || !decode(w, r, &req) {
		return
	}
	h, err := a.Sink.Add(req.URL, req.Types)
	switch {
	case err == nil:
		w.Header().Set("Location", "/api/v1/webhooks/"+h.ID)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		writeJSON(w, h)
	case errors.Is(err, webhooks.ErrURL), errors.Is(err, webhooks.ErrType):
		jsonError(w, http.StatusUnprocessableEntity, err.Error())
	case errors.Is(err, webhooks.ErrTooMany):
		jsonError(w, http.StatusConflict, err.Error())
	default:
		jsonError(w, http.StatusInternalServerError, err.Error())
	}
}

func (a *Webhooks) handleRemove(w http.ResponseWriter, r *http.Request) {
	if !a.ready(w) {
		return
	}
	if err := a.Sink.Remove(r.PathValue("id")); err != nil {
		a.fail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// handleTest sends a test message now and answers what the URL did (an
// attempt of the delivery log).
func (a *Webhooks) handleTest(w http.ResponseWriter, r *http.Request) {
	if !a.ready(w) {
		return
	}
	at, err := a.Sink.Test(r.Context(), r.PathValue("id"))
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, at)
}

func (a *Webhooks) handleDeliveries(w http.ResponseWriter, r *http.Request) {
	if !a.ready(w) {
		return
	}
	log, err := a.Sink.Deliveries(r.PathValue("id"))
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, log)
}

func (a *Webhooks) fail(w http.ResponseWriter, err error) {
	if errors.Is(err, webhooks.ErrNotFound) {
		jsonError(w, http.StatusNotFound, err.Error())
		return
	}
	jsonError(w, http.StatusInternalServerError, err.Error())
}
