package api

import (
	"errors"
	"net/http"
	"strings"

	"github.com/camd-project/camd/device/metrics"
)

// Metrics is GET /metrics in the Prometheus text format
// (docs/observability.md), for the owner's credential or the metrics
// token the owner makes for a Prometheus server (POST
// /api/v1/metrics/token: shown once, kept hashed; DELETE revokes it).
type Metrics struct {
	Scrape http.Handler  // metrics.Handler
	Tokens metricsTokens // *metrics.Tokens
}

// metricsTokens makes, revokes and checks the metrics token.
type metricsTokens interface {
	Create() (string, error)
	Revoke() error
	Check(token string) bool
}

func (a *Metrics) routes() []Route {
	return []Route{
		{"GET /metrics", Owner, a.handleMetrics},
		{"POST /api/v1/metrics/token", Owner, a.handleCreateToken},
		{"DELETE /api/v1/metrics/token", Owner, a.handleRevokeToken},
	}
}

func (a *Metrics) handleMetrics(w http.ResponseWriter, r *http.Request) {
	a.Scrape.ServeHTTP(w, r)
}

// MetricsToken is the body of POST /api/v1/metrics/token: the token, the
// only time it is shown. A new token replaces the one before.
type MetricsToken struct {
	Token string `json:"token"`
}

func (a *Metrics) handleCreateToken(w http.ResponseWriter, r *http.Request) {
	tok, err := a.Tokens.Create()
	if err != nil {
		jsonError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.WriteHeader(http.StatusCreated)
	writeJSON(w, MetricsToken{Token: tok})
}

func (a *Metrics) handleRevokeToken(w http.ResponseWriter, r *http.Request) {
	if err := a.Tokens.Revoke(); err != nil {
		code := http.StatusInternalServerError
		if errors.Is(err, metrics.ErrNoToken) {
			code = http.StatusNotFound
		}
		jsonError(w, code, err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// acceptMetricsToken lets the metrics token through to GET /metrics and
// nowhere else; every other request, and a /metrics request without
// that token, goes to h, whose routes table asks for the owner.
func (a *Metrics) acceptMetricsToken(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/metrics" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && a.Tokens.Check(strings.TrimSpace(tok)) {
				securityHeaders(http.HandlerFunc(a.handleMetrics)).ServeHTTP(w, r)
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}
