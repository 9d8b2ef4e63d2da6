package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/camd-project/camd/device/events"
	"github.com/camd-project/camd/device/pairing"
	"github.com/camd-project/camd/storage/eventlog"
)

// Events is the event log and its live stream: motion, recording and
// storage, users and settings (docs/architecture.md, "Events"). Viewers
// get the media events only, owners every event, on both routes.
type Events struct {
	Log eventHistory // the device's view of *eventlog.Log
	Bus eventBus     // *events.Bus
	// Heartbeat is how long a stream stays silent before camd sends a
	// comment line, which keeps NAT bindings and proxies open (default
	// 15 s).
	Heartbeat time.Duration
	// WriteTimeout bounds each write to a stream: a client that reads
	// nothing for that long is cut off (default 30 s).
	WriteTimeout time.Duration
	Logger       *slog.Logger
}

// eventHistory selects stored events and knows the newest one's ID.
type eventHistory interface {
	Query(eventlog.Query) ([]eventlog.Event, error)
	LastID() (uint64, error)
}

// eventBus streams events as they are stored.
type eventBus interface {
	Subscribe(events.History, events.Subscriber) (*events.Subscription, error)
}

func (a *Events) routes() []Route {
	return []Route{
		{"GET /api/v1/events", Viewer, a.handleList},
		{"GET /api/v1/events/stream", Viewer, a.handleStream},
	}
}

// kindsOf reads the types asked for: ?type=a,b (and ?kind=, its older
// name), "family.*" for a family.
func kindsOf(r *http.Request) []string {
	var kinds []string
	for _, k := range append(r.URL.Query()["type"], r.URL.Query()["kind"]...) {
		for t := range strings.SplitSeq(k, ",") {
			if t = strings.TrimSpace(t); t != "" {
				kinds = append(kinds, t)
			}
		}
	}
	return kinds
}

// visibleTo keeps the events u's role may see.
func visibleTo(u pairing.User) func(eventlog.Event) bool {
	owner := u.Role == pairing.Owner
	return func(e eventlog.Event) bool { return events.Visible(e.Kind, owner) }
}

// handleList lists the event log: newest first, or with ?after=ID oldest
// first from the event after ID (pages: the last ID of one is the after
// of the next, and a full page says so in a Link rel="next"); ?before=ID
// pages back from the newest the same way; ?type, ?from, ?to, ?limit
// (default DefaultEventPage, at most MaxEventPage).
func (a *Events) handleList(w http.ResponseWriter, r *http.Request) {
	if a.Log == nil {
		jsonError(w, http.StatusServiceUnavailable, "events: not available")
		return
	}
	q := r.URL.Query()
	query := eventlog.Query{Kinds: kindsOf(r), Keep: visibleTo(UserFrom(r.Context()))}
	for _, f := range []struct {
		name string
		dst  *time.Time
	}{{"from", &query.From}, {"to", &query.To}} {
		if s := q.Get(f.name); s != "" {
			t, err := parseTime(s, time.Now())
			if err != nil {
				jsonError(w, http.StatusBadRequest, err.Error())
				return
			}
			*f.dst = t
		}
	}
	for _, f := range []struct {
		name string
		dst  *uint64
	}{{"after", &query.After}, {"before", &query.Before}} {
		if s := q.Get(f.name); s != "" {
			id, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				jsonError(w, http.StatusBadRequest, fmt.Sprintf("events: %s=%q: want an event ID", f.name, s))
				return
			}
			*f.dst = id
		}
	}
	query.Oldest = q.Has("after")
	limit, _ := strconv.Atoi(q.Get("limit"))
	if limit <= 0 {
		limit = DefaultEventPage
	}
	query.Limit = min(limit, MaxEventPage)
	list, err := a.Log.Query(query)
	if err != nil {
		jsonError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if len(list) == query.Limit {
		// A full page: the next one starts past its last event, in the
		// same direction (RFC 8288's next link; the cursor is an ID).
		next := r.URL.Query()
		cursor := "before"
		if query.Oldest {
			cursor = "after"
		}
		next.Del("after")
		next.Del("before")
		next.Set(cursor, strconv.FormatUint(list[len(list)-1].ID, 10))
		w.Header().Set("Link", fmt.Sprintf("<%s?%s>; rel=\"next\"", r.URL.Path, next.Encode()))
	}
	writeJSON(w, list)
}

// Page sizes of GET /api/v1/events.
const (
	DefaultEventPage = 100
	MaxEventPage     = 1000
)

// Defaults of Events.
const (
	DefaultHeartbeat    = 15 * time.Second
	DefaultWriteTimeout = 30 * time.Second
)

// streamRetry is the reconnection delay a stream asks EventSource
// clients to wait, in milliseconds.
const streamRetry = 2000

// handleStream is the live event stream, as server-sent events
// (text/event-stream): each event an `id:` line (its ID) and a `data:`
// line (its JSON). With Last-Event-ID (the header an EventSource sends
// when it reconnects, or ?last_event_id) the events the client missed
// come first, from the log, then the live ones: in order, none twice.
// Without it only events from now on come. ?type narrows the types.
// A stream ends with `event: overflow` when its client fell too far
// behind (it reconnects and resumes), `event: closed` when camd ends it
// (stopping, the user revoked), each with {"reason"}.
func (a *Events) handleStream(w http.ResponseWriter, r *http.Request) {
	if a.Log == nil || a.Bus == nil {
		jsonError(w, http.StatusServiceUnavailable, "events: not available")
		return
	}
	u := UserFrom(r.Context())
	sub := events.Subscriber{User: u.ID, Owner: u.Role == pairing.Owner, Kinds: kindsOf(r)}
	last := r.Header.Get("Last-Event-ID")
	if last == "" {
		last = r.URL.Query().Get("last_event_id")
	}
	if last != "" {
		id, err := strconv.ParseUint(strings.TrimSpace(last), 10, 64)
		if err != nil {
			jsonError(w, http.StatusBadRequest, fmt.Sprintf("events: Last-Event-ID %q: want an event ID", last))
			return
		}
		sub.Resume, sub.After = true, id
	}
	s, err := a.Bus.Subscribe(a.Log, sub)
	if err != nil {
		w.Header().Set("Retry-After", "1")
		jsonError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	defer s.Close()

	heartbeat, writeTimeout := a.Heartbeat, a.WriteTimeout
	if heartbeat <= 0 {
		heartbeat = DefaultHeartbeat
	}
	if writeTimeout <= 0 {
		writeTimeout = DefaultWriteTimeout
	}
	rc := http.NewResponseController(w)
	deadline := func() { rc.SetWriteDeadline(time.Now().Add(writeTimeout)) }
	defer rc.SetWriteDeadline(time.Time{}) // the connection may serve more requests
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no") // a proxy in front must not hold events back
	w.WriteHeader(http.StatusOK)
	deadline()
	fmt.Fprintf(w, ": camd events\nretry: %d\n\n", streamRetry)
	if rc.Flush() != nil {
		return
	}
	// Events waiting together are written together and flushed once.
	timer := time.NewTimer(heartbeat)
	defer timer.Stop()
	ready := make(chan time.Time)
	close(ready)
	unflushed := false
	for {
		wait := timer.C
		if unflushed {
			wait = ready // do not wait with events unflushed
		}
		m, err := s.Next(r.Context(), wait)
		switch {
		case m != nil:
			// Each write may take WriteTimeout: a stream that always has
			// another event waiting is flushed by its buffer filling, and
			// must not be cut while its client reads.
			deadline()
			unflushed = true
			if _, err := w.Write(m.SSE); err != nil {
				return
			}
			continue
		case err == nil && !unflushed:
			deadline()
			io.WriteString(w, ": heartbeat\n\n")
		case err == nil:
		case r.Context().Err() != nil:
			return
		default:
			name := "closed"
			if errors.Is(err, events.ErrOverflow) {
				name = "overflow"
			} else if !errors.Is(err, events.ErrEnded) && !errors.Is(err, events.ErrClosed) && a.Logger != nil {
				a.Logger.Warn("camd: event stream failed", "user", u.ID, "err", err)
			}
			reason, _ := json.Marshal(map[string]string{"reason": err.Error()})
			deadline()
			fmt.Fprintf(w, "event: %s\ndata: %s\n\n", name, reason)
			rc.Flush()
			return
		}
		if rc.Flush() != nil {
			return
		}
		unflushed = false
		timer.Reset(heartbeat)
	}
}
