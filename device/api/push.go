package api

import (
	"errors"
	"net/http"

	"github.com/camd-project/camd/device/pairing"
	"github.com/camd-project/camd/notify/webpush"
)

// Push is Web Push (docs/push.md): each paired user subscribes their
// browsers and phones, lists and removes their own subscriptions, and
// chooses which events push. A user sees and changes only their own.
type Push struct {
	// Sink is nil when camd has no Web Push.
	Sink pushSink // *webpush.Sink
}

// pushSink keeps the subscriptions and preferences (*webpush.Sink).
type pushSink interface {
	PublicKey() string
	Subscribe(user, endpoint string, keys webpush.Keys) (webpush.Subscription, error)
	List(user string) ([]webpush.Subscription, error)
	Unsubscribe(user, id string) error
	Preferences(user string) (webpush.Preferences, error)
	SetPreferences(user string, owner bool, p webpush.Preferences) (webpush.Preferences, error)
}

func (a *Push) routes() []Route {
	return []Route{
		{"GET /api/v1/push/vapid", Viewer, a.handleVAPID},
		{"GET /api/v1/push/subscriptions", Viewer, a.handleList},
		{"POST /api/v1/push/subscriptions", Viewer, a.handleSubscribe},
		{"DELETE /api/v1/push/subscriptions/{id}", Viewer, a.handleUnsubscribe},
		{"GET /api/v1/push/preferences", Viewer, a.handlePreferences},
		{"PUT /api/v1/push/preferences", Viewer, a.handleSetPreferences},
	}
}

// VAPIDAnswer is the body of GET /api/v1/push/vapid: the device's VAPID
// public key, the applicationServerKey a page subscribes with.
type VAPIDAnswer struct {
	PublicKey string `json:"public_key"`
}

// SubscribeRequest is the body of POST /api/v1/push/subscriptions: a
// PushSubscription as its toJSON() writes it.
type SubscribeRequest struct {
	Endpoint string       `json:"endpoint"`
	Keys     webpush.Keys `json:"keys"`
	// ExpirationTime is what browsers send; camd does not use it.
	ExpirationTime *int64 `json:"expirationTime,omitempty"`
}

func (a *Push) ready(w http.ResponseWriter) bool {
	if a.Sink == nil {
		jsonError(w, http.StatusServiceUnavailable, "webpush: not available")
		return false
	}
	return true
}

func (a *Push) handleVAPID(w http.ResponseWriter, r *http.Request) {
	if a.ready(w) {
		writeJSON(w, VAPIDAnswer{a.Sink.PublicKey()})
	}
}

func (a *Push) handleList(w http.ResponseWriter, r *http.Request) {
	if !a.ready(w) {
		return
	}
	subs, err := a.Sink.List(UserFrom(r.Context()).ID)
	if err != nil {
		jsonError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, subs)
}

// handleSubscribe adds a subscription for the caller: 201 with it; 422
// for an endpoint that is not https or not public, or bad keys; 409 past
// webpush.MaxPerUser.
func (a *Push) handleSubscribe(w http.ResponseWriter, r *http.Request) {
	var req SubscribeRequest
	if !a.ready(w) || !decode(w, r, &req) {
		return
	}
	sub, err := a.Sink.Subscribe(UserFrom(r.Context()).ID, req.Endpoint, req.Keys)
	switch {
	case err == nil:
		w.Header().Set("Location", "/api/v1/push/subscriptions/"+sub.ID)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		writeJSON(w, sub)
	case errors.Is(err, webpush.ErrEndpoint), errors.Is(err, webpush.ErrKeys):
		jsonError(w, http.StatusUnprocessableEntity, err.Error())
	case errors.Is(err, webpush.ErrTooMany):
		jsonError(w, http.StatusConflict, err.Error())
	default:
		jsonError(w, http.StatusInternalServerError, err.Error())
	}
}

func (a *Push) handleUnsubscribe(w http.ResponseWriter, r *http.Request) {
	if !a.ready(w) {
		return
	}
	err := a.Sink.Unsubscribe(UserFrom(r.Context()).ID, r.PathValue("id"))
	switch {
	case err == nil:
		w.WriteHeader(http.StatusNoContent)
	case errors.Is(err, webpush.ErrNotFound):
		jsonError(w, http.StatusNotFound, err.Error())
	default:
		jsonError(w, http.StatusInternalServerError, err.Error())
	}
}

func (a *Push) handlePreferences(w http.ResponseWriter, r *http.Request) {
	if !a.ready(w) {
		return
	}
	p, err := a.Sink.Preferences(UserFrom(r.Context()).ID)
	if err != nil {
		jsonError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, p)
}

// handleSetPreferences replaces the caller's preferences: 422 for a type
// the caller may not see or that does not exist.
func (a *Push) handleSetPreferences(w http.ResponseWriter, r *http.Request) {
	var p webpush.Preferences
	if !a.ready(w) || !decode(w, r, &p) {
		return
	}
	u := UserFrom(r.Context())
	p, err := a.Sink.SetPreferences(u.ID, u.Role == pairing.Owner, p)
	switch {
	case err == nil:
		writeJSON(w, p)
	case errors.Is(err, webpush.ErrType):
		jsonError(w, http.StatusUnprocessableEntity, err.Error())
	default:
		jsonError(w, http.StatusInternalServerError, err.Error())
	}
}
