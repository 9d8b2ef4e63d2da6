package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/camd-project/camd/device/crash"
)

// Crashes is the crash reports kept on the device (docs/observability.md):
// the owner reads each and decides to send it to the configured
// collector or to delete it. Nothing is sent without that choice (unless
// the configuration says crash_reports: send).
type Crashes struct {
	Reports crashReports // *crash.Reports
}

// crashReports lists, sends and deletes reports.
type crashReports interface {
	List() ([]crash.Summary, error)
	Get(id string) (crash.Report, error)
	Send(ctx context.Context, id string) (crash.Report, error)
	Delete(id string) error
}

func (a *Crashes) routes() []Route {
	return []Route{
		{"GET /api/v1/crashes", Owner, a.handleList},
		{"GET /api/v1/crashes/{id}", Owner, a.handleGet},
		{"POST /api/v1/crashes/{id}/send", Owner, a.handleSend},
		{"DELETE /api/v1/crashes/{id}", Owner, a.handleDelete},
	}
}

func (a *Crashes) ready(w http.ResponseWriter) bool {
	if a.Reports == nil {
		jsonError(w, http.StatusServiceUnavailable, "crash: not available")
		return false
	}
	return true
}

func crashError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, crash.ErrNotFound):
		jsonError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, crash.ErrNoURL):
		jsonError(w, http.StatusConflict, err.Error())
	case errors.Is(err, crash.ErrUpload):
		jsonError(w, http.StatusBadGateway, err.Error())
	default:
		jsonError(w, http.StatusInternalServerError, err.Error())
	}
}

// handleList lists the reports, newest first, without traces.
func (a *Crashes) handleList(w http.ResponseWriter, r *http.Request) {
	if !a.ready(w) {
		return
	}
	sums, err := a.Reports.List()
	if err != nil {
		crashError(w, err)
		return
	}
	writeJSON(w, map[string]any{"crashes": sums})
}

// handleGet answers one report: version, uptime, trace, the log's last
// lines, when it was sent.
func (a *Crashes) handleGet(w http.ResponseWriter, r *http.Request) {
	if !a.ready(w) {
		return
	}
	rep, err := a.Reports.Get(r.PathValue("id"))
	if err != nil {
		crashError(w, err)
		return
	}
	writeJSON(w, rep)
}

// handleSend uploads a report: the owner's consent. 409 when no
// collector is configured, 502 when it did not take the report.
func (a *Crashes) handleSend(w http.ResponseWriter, r *http.Request) {
	if !a.ready(w) {
		return
	}
	rep, err := a.Reports.Send(r.Context(), r.PathValue("id"))
	if err != nil {
		crashError(w, err)
		return
	}
	writeJSON(w, crash.Summary{ID: rep.ID, Time: rep.Time, Version: rep.Version, Uptime: rep.Uptime, Sent: rep.Sent})
}

func (a *Crashes) handleDelete(w http.ResponseWriter, r *http.Request) {
	if !a.ready(w) {
		return
	}
	if err := a.Reports.Delete(r.PathValue("id")); err != nil {
		crashError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
