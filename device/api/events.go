package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/camd-project/camd/storage/eventlog"
)

// Events is the event log: motion, storage trouble and the like.
type Events struct {
	Log eventLister // *eventlog.Log
}

// eventLister lists the events of a range, newest first.
type eventLister interface {
	List(from, to time.Time, kind string, limit int) ([]eventlog.Event, error)
}

func (a *Events) routes() []Route {
	return []Route{
		{"GET /api/v1/events", Viewer, a.handleList},
	}
}

// handleList lists the event log (?from, ?to, ?kind, ?limit), newest
// first.
func (a *Events) handleList(w http.ResponseWriter, r *http.Request) {
	if a.Log == nil {
		jsonError(w, http.StatusServiceUnavailable, "events: not available")
		return
	}
	q := r.URL.Query()
	var from, to time.Time
	var err error
	if s := q.Get("from"); s != "" {
		if from, err = parseTime(s, time.Now()); err != nil {
			jsonError(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	if s := q.Get("to"); s != "" {
		if to, err = parseTime(s, time.Now()); err != nil {
			jsonError(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	limit, _ := strconv.Atoi(q.Get("limit"))
	list, err := a.Log.List(from, to, q.Get("kind"), min(max(limit, 0), 1000))
	if err != nil {
		jsonError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, list)
}
