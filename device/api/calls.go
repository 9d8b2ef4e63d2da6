package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/camd-project/camd/device/calls"
	"github.com/camd-project/camd/device/events"
	"github.com/camd-project/camd/media/whep"
	"github.com/camd-project/camd/storage/eventlog"
)

// Calls are the doorbell's calls (docs/calls.md): the list, a call
// started by the owner, and a phone's answer, decline and hang-up.
// Paired users answer (viewers and owners); a stream key cannot.
type Calls struct {
	Ringer callRinger // *calls.Manager
	Phones callPhones // *calls.Manager
	List   callList   // *calls.Manager
	// Log is the event log the calls' history is read from: every
	// transition is a call.* event there, kept across restarts. Nil: the
	// history is empty.
	Log eventHistory
	// Media makes the answering phone's WebRTC session (*whep.Server):
	// the camera's video and microphone to the phone, the phone's voice
	// to the speaker. Nil: calls ring, but cannot be answered (501).
	Media callMedia
	// Talk makes the media's view of an answered call: where the phone's
	// audio goes (the speaker). Nil: nowhere.
	Talk callTalk
}

// callTalk makes a call's session hooks: ended is told once why it
// ended.
type callTalk interface {
	NewCall(id string, ended func(reason string)) whep.Call
}

// callRinger starts a call.
type callRinger interface {
	Ring(source, by string) (calls.Call, error)
}

// callPhones are a phone's answers to a call.
type callPhones interface {
	Answer(id, user string) (calls.Call, error)
	Decline(id, user string, busy bool) (calls.Call, error)
	Hangup(id, user, reason string) (calls.Call, error)
}

// callList reads the call in progress, and recent calls by ID.
type callList interface {
	Current() (calls.Call, bool)
	Get(id string) (calls.Call, error)
}

// callMedia answers a call's offer and ends its session.
type callMedia interface {
	CheckCallOffer(offer []byte) error
	Admits(r *http.Request) error
	HandleCallOffer(w http.ResponseWriter, r *http.Request, c whep.Call) bool
	HandlePatch(w http.ResponseWriter, r *http.Request)
}

// CallList is the answer of GET /api/v1/calls.
type CallList struct {
	// Current is the call ringing or under way; null when none.
	Current *calls.Call `json:"current"`
	// History is the other calls, newest first, as the event log tells
	// them.
	History []CallRecord `json:"history"`
}

// CallRecord is a call as its events in the log tell it: when it rang,
// each change of state, who answered, how long it lasted, why it ended,
// and for a missed call its snapshot and clip.
type CallRecord struct {
	ID    string      `json:"id"`
	State calls.State `json:"state"`
	// Source is what started it (doorbell, api); By who started it from
	// the API.
	Source     string    `json:"source,omitempty"`
	By         string    `json:"by,omitempty"`
	Started    time.Time `json:"started"`
	Answered   time.Time `json:"answered,omitzero"`
	AnsweredBy string    `json:"answered_by,omitempty"`
	Finished   time.Time `json:"finished,omitzero"`
	// Seconds is how long an answered call lasted.
	Seconds int `json:"seconds"`
	// Reason says why it finished; EndedBy is the user who ended it (who
	// hung up or declined last), empty when camd did.
	Reason  string `json:"reason,omitempty"`
	EndedBy string `json:"ended_by,omitempty"`
	// Snapshot and Clip are a missed call's (GET /api/v1/snapshots/{id},
	// GET /api/v1/recordings/export?from&to).
	Snapshot        string         `json:"snapshot,omitempty"`
	SnapshotMissing bool           `json:"snapshot_missing,omitempty"`
	Clip            *eventlog.Clip `json:"clip,omitempty"`
	Transitions     []CallStep     `json:"transitions"`
}

// CallStep is one transition of a call: its event.
type CallStep struct {
	Event  uint64      `json:"event"` // the event's ID
	State  calls.State `json:"state"`
	Time   time.Time   `json:"time"`
	User   string      `json:"user,omitempty"`
	Reason string      `json:"reason,omitempty"`
}

// Pages of the calls' history.
const (
	DefaultCallPage = 50
	MaxCallPage     = 1000
	// callEventScan bounds the events read for one page: the log keeps
	// at most this many (eventlog.Options.Max's default).
	callEventScan = 10000
)

// Decline is the body of POST /api/v1/calls/{id}/decline.
type Decline struct {
	// Reason is "declined" (the default) or "busy" (the phone is in
	// another call).
	Reason string `json:"reason"`
}

func (a *Calls) routes() []Route {
	return []Route{
		{"GET /api/v1/calls", Viewer, a.handleList},
		{"POST /api/v1/calls", Owner, a.handleRing},
		// The answer's session is "id", as on the WHEP routes.
		{"POST /api/v1/calls/{call}/answer", Viewer, a.handleAnswer},
		{"PATCH /api/v1/calls/{call}/answer/{id}", Viewer, a.handlePatch},
		{"DELETE /api/v1/calls/{call}/answer/{id}", Viewer, a.handleHangup},
		// The same without the session: camctl call hangup, from another
		// process than the one that answered.
		{"DELETE /api/v1/calls/{call}", Viewer, a.handleHangup},
		{"POST /api/v1/calls/{call}/decline", Viewer, a.handleDecline},
	}
}

// handleList is the call in progress and the history: the calls that
// began in [from, to) (default: all the log keeps), newest first, at
// most limit (default DefaultCallPage); a full page has a Link rel=next
// to the older ones.
func (a *Calls) handleList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var from, to time.Time
	for _, f := range []struct {
		name string
		dst  *time.Time
	}{{"from", &from}, {"to", &to}} {
		if s := q.Get(f.name); s != "" {
			t, err := parseTime(s, time.Now())
			if err != nil {
				jsonError(w, http.StatusBadRequest, err.Error())
				return
			}
			*f.dst = t
		}
	}
	limit := DefaultCallPage
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			jsonError(w, http.StatusBadRequest, fmt.Sprintf("calls: limit=%q: want a positive number", s))
			return
		}
		limit = min(n, MaxCallPage)
	}
	out := CallList{History: []CallRecord{}}
	if c, ok := a.List.Current(); ok {
		out.Current = &c
	}
	if a.Log != nil {
		list, err := a.Log.Query(eventlog.Query{From: from, Kinds: []string{"call.*"}, Oldest: true, Limit: callEventScan})
		if err != nil {
			jsonError(w, http.StatusInternalServerError, err.Error())
			return
		}
		for _, c := range callRecords(list) {
			switch {
			case out.Current != nil && c.ID == out.Current.ID:
			case c.Started.Before(from), !to.IsZero() && !c.Started.Before(to):
			default:
				out.History = append(out.History, a.finished(c))
			}
		}
	}
	if len(out.History) > limit {
		out.History = out.History[:limit]
		next := r.URL.Query()
		next.Set("to", out.History[limit-1].Started.Format(time.RFC3339Nano))
		w.Header().Set("Link", fmt.Sprintf("<%s?%s>; rel=\"next\"", r.URL.Path, next.Encode()))
	}
	writeJSON(w, out)
}

// finished completes a record whose end the log does not have yet (its
// event is being committed) from the manager's recent calls.
func (a *Calls) finished(c CallRecord) CallRecord {
	if !c.State.Live() {
		return c
	}
	m, err := a.List.Get(c.ID)
	if err != nil || m.State.Live() {
		return c // a call camd did not see end (it crashed)
	}
	c.State, c.Finished, c.Reason = m.State, m.Finished, m.Reason
	if !m.Answered.IsZero() {
		c.Seconds = int(m.Finished.Sub(m.Answered).Round(time.Second) / time.Second)
	}
	return c
}

// callRecords folds calls' events (oldest first) into one record per
// call that rang among them, newest first. A call whose ringing is not
// among them (older than the range, or pruned from the log) is left out.
func callRecords(list []eventlog.Event) []CallRecord {
	byID := map[string]*CallRecord{}
	var order []*CallRecord
	for _, e := range list {
		d := e.Data
		c := byID[d["call"]]
		if e.Kind == events.CallRinging {
			c = &CallRecord{ID: d["call"], Source: d["source"], By: d["user"], Started: e.Time}
			byID[c.ID] = c
			order = append(order, c)
		}
		if c == nil {
			continue
		}
		st := calls.State(d["state"])
		if st == "" {
			st = calls.State(strings.TrimPrefix(e.Kind, "call."))
		}
		c.State = st
		c.Transitions = append(c.Transitions, CallStep{Event: e.ID, State: st, Time: e.Time, User: d["user"], Reason: d["reason"]})
		switch e.Kind {
		case events.CallAnswered:
			c.Answered, c.AnsweredBy = e.Time, d["user"]
		case events.CallDeclined, events.CallMissed, events.CallEnded:
			c.Finished, c.Reason, c.EndedBy = e.Time, d["reason"], d["user"]
			c.Seconds, _ = strconv.Atoi(d["seconds"])
			c.Snapshot, c.SnapshotMissing, c.Clip = e.Snapshot, e.SnapshotMissing, e.Clip
		}
	}
	out := make([]CallRecord, 0, len(order))
	for _, c := range slices.Backward(order) {
		out = append(out, *c)
	}
	return out
}

// handleRing starts a call from the API ("call the owner"): 201 with
// the call; 409 while another is in progress.
func (a *Calls) handleRing(w http.ResponseWriter, r *http.Request) {
	c, err := a.Ringer.Ring("api", UserFrom(r.Context()).ID)
	if err != nil {
		callError(w, err)
		return
	}
	w.Header().Set("Location", "/api/v1/calls/"+c.ID)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	json.NewEncoder(w).Encode(c)
}

// callError answers an error of the calls manager.
func callError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, calls.ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, calls.ErrInCall), errors.Is(err, calls.ErrAnsweredElsewhere),
		errors.Is(err, calls.ErrNotAnswerer):
		code = http.StatusConflict
	case errors.Is(err, calls.ErrOver):
		code = http.StatusGone
	case errors.Is(err, calls.ErrClosed):
		code = http.StatusServiceUnavailable
	}
	jsonError(w, code, err.Error())
}

// handleAnswer is a phone's answer: a WHEP-style exchange whose offer
// sends and receives audio (the phone's voice to the speaker) and
// receives video. The offer is checked before the call is claimed, so a
// bad offer leaves the call ringing; the first good answer wins (201 with
// the SDP answer and the session's Location); the others get 409
// "answered elsewhere"; a call that is over 410.
func (a *Calls) handleAnswer(w http.ResponseWriter, r *http.Request) {
	if a.Media == nil {
		jsonError(w, http.StatusNotImplemented, "calls: no media for calls")
		return
	}
	id, user := r.PathValue("call"), UserFrom(r.Context())
	body, ok := readSDP(w, r)
	if !ok {
		return
	}
	if err := a.Media.CheckCallOffer(body); err != nil {
		code := http.StatusUnprocessableEntity
		if errors.Is(err, whep.ErrBadSDP) {
			code = http.StatusBadRequest
		}
		jsonError(w, code, err.Error())
		return
	}
	if err := a.Media.Admits(r); err != nil {
		// Checked before the call is claimed: the phone that cannot have
		// a session leaves the call ringing for the others.
		w.Header().Set("Retry-After", "5")
		jsonError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	if _, err := a.Phones.Answer(id, user.ID); err != nil {
		callError(w, err)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	ended := func(reason string) { a.Phones.Hangup(id, "", reason) }
	c := whep.Call{ID: id, Ended: ended}
	if a.Talk != nil {
		c = a.Talk.NewCall(id, ended)
	}
	if !a.Media.HandleCallOffer(w, r, c) {
		a.Phones.Hangup(id, "", calls.ReasonFailed)
	}
}

// readSDP reads an SDP offer of at most whep.MaxBody bytes.
func readSDP(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	if ct := r.Header.Get("Content-Type"); ct != whep.ContentTypeSDP {
		jsonError(w, http.StatusUnsupportedMediaType, "calls: Content-Type must be "+whep.ContentTypeSDP)
		return nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, whep.MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			jsonError(w, http.StatusRequestEntityTooLarge, "calls: offer too large")
		} else {
			jsonError(w, http.StatusBadRequest, "calls: reading the offer: "+err.Error())
		}
		return nil, false
	}
	return body, true
}

// handlePatch trickles the answering phone's ICE candidates.
func (a *Calls) handlePatch(w http.ResponseWriter, r *http.Request) {
	if a.Media == nil {
		jsonError(w, http.StatusNotImplemented, "calls: no media for calls")
		return
	}
	a.Media.HandlePatch(w, r)
}

// handleHangup is DELETE on the answer's Location, or on the call: the
// phone that answered hangs up (200 with the call; the owner who rang
// from the API may also end the call while it rings); another user gets
// 409, a call that is over 410. The call's end ends its media session
// (device/calls.go), so camd knows who hung up before the connection
// closes.
func (a *Calls) handleHangup(w http.ResponseWriter, r *http.Request) {
	c, err := a.Phones.Hangup(r.PathValue("call"), UserFrom(r.Context()).ID, calls.ReasonHungUp)
	if err != nil {
		callError(w, err)
		return
	}
	writeJSON(w, c)
}

// handleDecline is a phone's refusal: {"reason": "declined"|"busy"}.
func (a *Calls) handleDecline(w http.ResponseWriter, r *http.Request) {
	var d Decline
	if r.ContentLength != 0 {
		if err := json.NewDecoder(io.LimitReader(r.Body, 4<<10)).Decode(&d); err != nil {
			jsonError(w, http.StatusBadRequest, "calls: body: "+err.Error())
			return
		}
	}
	switch d.Reason {
	case "", "declined", "busy":
	default:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnprocessableEntity)
		json.NewEncoder(w).Encode(map[string]any{
			"error": "calls: a decline's reason is declined or busy", "field": "reason", "value": d.Reason,
			"allowed": "declined, busy",
		})
		return
	}
	c, err := a.Phones.Decline(r.PathValue("call"), UserFrom(r.Context()).ID, d.Reason == "busy")
	if err != nil {
		callError(w, err)
		return
	}
	writeJSON(w, c)
}
