package api

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/camd-project/camd/internal/logring"
)

// Logs is camd's log kept on the device (docs/observability.md): the
// owner reads it, and follows it by long polling.
type Logs struct {
	Ring logReader // *logring.Ring
}

// logReader reads the log ring.
type logReader interface {
	Read(q logring.Query) ([]logring.Entry, uint64, error)
	Wait(ctx context.Context, after uint64) error
}

// maxLogWait bounds a long poll (?wait).
const maxLogWait = 60 * time.Second

func (a *Logs) routes() []Route {
	return []Route{
		{"GET /api/v1/logs", Owner, a.handleList},
	}
}

// LogsAnswer is the body of GET /api/v1/logs: the lines, oldest first,
// each the JSON object camd logged (seq, time, level, msg and the
// record's attributes), and the after= that asks for what follows.
type LogsAnswer struct {
	Entries []json.RawMessage `json:"entries"`
	Next    uint64            `json:"next"`
}

// handleList answers the log's lines: ?level (debug, info, warn, error:
// that level and above), ?since (a time), ?limit (default 500, at most
// 5000), ?after=SEQ (the lines after that one, oldest first) and
// ?wait=DURATION (with after: wait up to that long, at most 60 s, for a
// line to come when none has yet: a long poll).
func (a *Logs) handleList(w http.ResponseWriter, r *http.Request) {
	if a.Ring == nil {
		jsonError(w, http.StatusServiceUnavailable, "logs: not available")
		return
	}
	p := r.URL.Query()
	var q logring.Query
	var err error
	if s := p.Get("level"); s != "" {
		if err = q.Level.UnmarshalText([]byte(strings.ToUpper(s))); err != nil {
			jsonError(w, http.StatusBadRequest, "logs: level is debug, info, warn or error")
			return
		}
	} else {
		q.Level = slog.LevelDebug
	}
	if s := p.Get("since"); s != "" {
		if q.Since, err = parseTime(s, time.Now()); err != nil {
			jsonError(w, http.StatusBadRequest, "logs: since: "+err.Error())
			return
		}
	}
	if s := p.Get("after"); s != "" {
		if q.After, err = strconv.ParseUint(s, 10, 64); err != nil {
			jsonError(w, http.StatusBadRequest, "logs: after is a line's seq")
			return
		}
	}
	q.Limit = 500
	if s := p.Get("limit"); s != "" {
		if q.Limit, err = strconv.Atoi(s); err != nil || q.Limit < 1 || q.Limit > 5000 {
			jsonError(w, http.StatusBadRequest, "logs: limit is 1 to 5000")
			return
		}
	}
	var wait time.Duration
	if s := p.Get("wait"); s != "" {
		if wait, err = time.ParseDuration(s); err != nil || wait < 0 {
			jsonError(w, http.StatusBadRequest, "logs: wait is a duration such as 30s")
			return
		}
		wait = min(wait, maxLogWait)
	}
	for {
		entries, next, err := a.Ring.Read(q)
		if err != nil {
			jsonError(w, http.StatusServiceUnavailable, err.Error())
			return
		}
		if len(entries) > 0 || wait == 0 || q.After == 0 {
			ans := LogsAnswer{Entries: make([]json.RawMessage, len(entries)), Next: next}
			for i, e := range entries {
				ans.Entries[i] = e.Line
			}
			writeJSON(w, ans)
			return
		}
		// Nothing new that matches: wait for the next line, then look
		// again from the last one seen.
		ctx, cancel := context.WithTimeout(r.Context(), wait)
		start := time.Now()
		err = a.Ring.Wait(ctx, next)
		cancel()
		wait -= time.Since(start)
		q.After = next
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			if r.Context().Err() != nil {
				return
			}
			jsonError(w, http.StatusServiceUnavailable, err.Error())
			return
		}
		if err != nil || wait <= 0 {
			writeJSON(w, LogsAnswer{Entries: []json.RawMessage{}, Next: next})
			return
		}
	}
}
