package calls

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// State is where a call is.
type State string

// The states of a call. Ringing and Answered are live; the others are
// final.
const (
	Ringing  State = "ringing"
	Answered State = "answered"
	Ended    State = "ended"    // answered, then hung up, failed or too long
	Missed   State = "missed"   // nobody answered within RingTimeout
	Declined State = "declined" // every notified phone declined
	Busy     State = "busy"     // a phone answered that it is busy
)

// Live reports whether a call in this state is ringing or under way.
func (s State) Live() bool { return s == Ringing || s == Answered }

// Reasons a call ends or is refused, in Transition.Reason and Call.Reason.
const (
	ReasonHungUp      = "hung up"
	ReasonMaxDuration = "max duration"
	ReasonTimeout     = "ring timeout"
	ReasonDeclined    = "declined"
	ReasonBusy        = "busy"
	ReasonFailed      = "connection failed"
	ReasonStopping    = "camd stopping"
)

// Errors of the manager's requests.
var (
	// ErrInCall: a call is ringing or under way; only one at a time.
	ErrInCall = errors.New("calls: a call is already in progress")
	// ErrNotFound: no call has this ID (or it is too old to be kept).
	ErrNotFound = errors.New("calls: no such call")
	// ErrAnsweredElsewhere: another phone answered first.
	ErrAnsweredElsewhere = errors.New("calls: answered elsewhere")
	// ErrOver: the call has ended (missed, declined, busy or ended).
	ErrOver = errors.New("calls: the call is over")
	// ErrNotAnswerer: only the phone that answered may hang up.
	ErrNotAnswerer = errors.New("calls: the call was answered by another user")
	// ErrClosed: camd is stopping.
	ErrClosed = errors.New("calls: closed")
)

// Call is one call as clients see it.
type Call struct {
	ID    string `json:"id"`
	State State  `json:"state"`
	// Source is what started it: "doorbell" or "api".
	Source string `json:"source"`
	// By is the user who started it from the API.
	By         string    `json:"by,omitempty"`
	Started    time.Time `json:"started"`
	Answered   time.Time `json:"answered,omitzero"`
	AnsweredBy string    `json:"answered_by,omitempty"`
	Finished   time.Time `json:"finished,omitzero"`
	// Reason says why a call finished.
	Reason string `json:"reason,omitempty"`
	// Declined lists the phones (user IDs) that declined while it rang.
	Declined []string `json:"declined,omitempty"`
	// Phones are the users told of the call when it began to ring.
	Phones []string `json:"phones,omitempty"`
}

// Transition is one change of a call's state, told to Options.Notify in
// the order they happened.
type Transition struct {
	Call Call // the call after the change
	From State
	To   State
	Time time.Time
	// User is who caused it (the phone that answered, declined or hung
	// up; the owner who started a call); empty for camd's own (a timeout,
	// the doorbell).
	User   string
	Reason string
}

// Options configure a Manager. The zero value of each field means its
// default.
type Options struct {
	// RingTimeout: a call nobody answered is missed after it (default
	// 30 s).
	RingTimeout time.Duration
	// MaxDuration: an answered call ends after it (default 3 min).
	MaxDuration time.Duration
	// Phones lists the users told of a call (the paired users); a call is
	// declined once every one of them declined. Nil: nobody is listed,
	// and one decline declines the call.
	Phones func() []string
	// Notify is told of every transition, one at a time and in order,
	// never while the manager holds its lock. It must not call back into
	// the manager's requests that wait for it (Close).
	Notify func(Transition)
	// History is how many finished calls are kept (default 50).
	History int
	Logger  *slog.Logger
}

func (o *Options) defaults() {
	if o.RingTimeout <= 0 {
		o.RingTimeout = 30 * time.Second
	}
	if o.MaxDuration <= 0 {
		o.MaxDuration = 3 * time.Minute
	}
	if o.History <= 0 {
		o.History = 50
	}
	if o.Notify == nil {
		o.Notify = func(Transition) {}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Manager runs the calls: one at a time, ringing → answered → ended, or
// ringing → missed, declined or busy. Its methods are safe for
// concurrent use; the first answer wins.
type Manager struct {
	opts Options

	notifyMu sync.Mutex // held while pending transitions are told, in order

	mu      sync.Mutex
	current *call
	history []Call // finished calls, oldest first
	pending []Transition
	closed  bool
}

// call is the live call's state.
type call struct {
	Call
	timer *time.Timer // ring timeout, then max duration
}

// New returns a manager with no call.
func New(opts Options) *Manager {
	opts.defaults()
	return &Manager{opts: opts}
}

func newID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Ring starts a call: source is "doorbell" or "api", by the user who
// asked (empty for the doorbell). A call already in progress refuses it
// with ErrInCall (a press during a call is logged and ignored).
func (m *Manager) Ring(source, by string) (Call, error) {
	var phones []string
	if m.opts.Phones != nil {
		phones = m.opts.Phones()
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return Call{}, ErrClosed
	}
	if c := m.current; c != nil {
		id := c.ID
		m.mu.Unlock()
		m.opts.Logger.Info("calls: ring ignored: a call is in progress", "source", source, "call", id)
		return Call{}, fmt.Errorf("%w (%s)", ErrInCall, id)
	}
	now := time.Now()
	c := &call{Call: Call{ID: newID(), State: Ringing, Source: source, By: by, Started: now, Phones: phones}}
	m.current = c
	id := c.ID
	c.timer = time.AfterFunc(m.opts.RingTimeout, func() { m.expire(id, Ringing) })
	m.transition(c, "", Ringing, by, "")
	out := c.snapshot()
	m.mu.Unlock()
	m.flush()
	return out, nil
}

// Answer gives the ringing call to user: the first answer wins; the
// others get ErrAnsweredElsewhere.
func (m *Manager) Answer(id, user string) (Call, error) {
	m.mu.Lock()
	c, err := m.live(id)
	if err != nil {
		m.mu.Unlock()
		return Call{}, err
	}
	if c.State == Answered {
		m.mu.Unlock()
		return Call{}, ErrAnsweredElsewhere
	}
	c.timer.Stop()
	c.Answered, c.AnsweredBy = time.Now(), user
	c.timer = time.AfterFunc(m.opts.MaxDuration, func() { m.expire(id, Answered) })
	m.transition(c, Ringing, Answered, user, "")
	out := c.snapshot()
	m.mu.Unlock()
	m.flush()
	return out, nil
}

// Decline is a phone's refusal of a ringing call: busy (the phone is in
// another call) ends it at once as busy; otherwise it is declined once
// every notified phone declined. A call already answered gets
// ErrAnsweredElsewhere.
func (m *Manager) Decline(id, user string, busy bool) (Call, error) {
	m.mu.Lock()
	c, err := m.live(id)
	if err != nil {
		m.mu.Unlock()
		return Call{}, err
	}
	if c.State == Answered {
		m.mu.Unlock()
		return Call{}, ErrAnsweredElsewhere
	}
	if !slices.Contains(c.Declined, user) {
		c.Declined = append(c.Declined, user)
	}
	switch {
	case busy:
		m.finish(c, Busy, user, ReasonBusy)
	case m.allDeclined(c):
		m.finish(c, Declined, user, ReasonDeclined)
	default:
		m.opts.Logger.Info("calls: a phone declined", "call", id, "user", user)
	}
	out := c.snapshot()
	m.mu.Unlock()
	m.flush()
	return out, nil
}

func (m *Manager) allDeclined(c *call) bool {
	for _, p := range c.Phones {
		if !slices.Contains(c.Declined, p) {
			return false
		}
	}
	return true
}

// Hangup ends an answered call: by its answerer (user; another user gets
// ErrNotAnswerer) or by camd (user empty: the connection failed). A
// ringing call hung up by camd (user empty) or by the owner who started
// it ends unanswered.
func (m *Manager) Hangup(id, user, reason string) (Call, error) {
	if reason == "" {
		reason = ReasonHungUp
	}
	m.mu.Lock()
	c, err := m.live(id)
	if err != nil {
		m.mu.Unlock()
		return Call{}, err
	}
	if user != "" && user != c.AnsweredBy && !(c.State == Ringing && user == c.By) {
		m.mu.Unlock()
		return Call{}, ErrNotAnswerer
	}
	m.finish(c, Ended, user, reason)
	out := c.snapshot()
	m.mu.Unlock()
	m.flush()
	return out, nil
}

// EndUser ends the answered call of a user who may no longer have it
// (revoked, expired, role changed: the session guard) and forgets their
// place among the phones of a ringing call, which is declined if every
// phone left has declined. It returns how many answered calls it ended
// (0 or 1).
func (m *Manager) EndUser(user, reason string) int {
	m.mu.Lock()
	c := m.current
	n := 0
	if c != nil {
		c.Phones = slices.DeleteFunc(c.Phones, func(p string) bool { return p == user })
		switch {
		case c.State == Answered && c.AnsweredBy == user:
			m.finish(c, Ended, "", reason)
			n = 1
		case c.State == Ringing && len(c.Declined) > 0 && m.allDeclined(c):
			// The phones left have all declined.
			m.finish(c, Declined, "", ReasonDeclined)
		}
	}
	m.mu.Unlock()
	m.flush()
	return n
}

// Get returns a call, live or kept in the history.
func (m *Manager) Get(id string) (Call, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c := m.current; c != nil && c.ID == id {
		return c.snapshot(), nil
	}
	for _, h := range m.history {
		if h.ID == id {
			return h, nil
		}
	}
	return Call{}, ErrNotFound
}

// Current returns the call ringing or under way, if any.
func (m *Manager) Current() (Call, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.current == nil {
		return Call{}, false
	}
	return m.current.snapshot(), true
}

// History returns the finished calls kept, newest first.
func (m *Manager) History() []Call {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := slices.Clone(m.history)
	slices.Reverse(out)
	return out
}

// Close ends the live call (ReasonStopping) and refuses new ones. Safe
// twice.
func (m *Manager) Close() {
	m.mu.Lock()
	m.closed = true
	if c := m.current; c != nil {
		to := Ended
		if c.State == Ringing {
			to = Missed
		}
		m.finish(c, to, "", ReasonStopping)
	}
	m.mu.Unlock()
	m.flush()
}

// live returns the live call with this ID; m.mu is held.
func (m *Manager) live(id string) (*call, error) {
	if c := m.current; c != nil && c.ID == id {
		return c, nil
	}
	for _, h := range m.history {
		if h.ID == id {
			return nil, fmt.Errorf("%w (%s)", ErrOver, h.State)
		}
	}
	return nil, ErrNotFound
}

// expire is a timer's end of the call it was set for, in the state it
// was set in; a timer that lost the race to a transition does nothing.
func (m *Manager) expire(id string, in State) {
	m.mu.Lock()
	c := m.current
	if c == nil || c.ID != id || c.State != in {
		m.mu.Unlock()
		return
	}
	if in == Ringing {
		m.finish(c, Missed, "", ReasonTimeout)
	} else {
		m.finish(c, Ended, "", ReasonMaxDuration)
	}
	m.mu.Unlock()
	m.flush()
}

// finish moves the live call to a final state and into the history;
// m.mu is held.
func (m *Manager) finish(c *call, to State, user, reason string) {
	c.timer.Stop()
	from := c.State
	c.Finished, c.Reason = time.Now(), reason
	m.transition(c, from, to, user, reason)
	m.current = nil
	m.history = append(m.history, c.snapshot())
	if len(m.history) > m.opts.History {
		m.history = slices.Delete(m.history, 0, len(m.history)-m.opts.History)
	}
}

// transition sets the call's state and queues the change for Notify;
// m.mu is held.
func (m *Manager) transition(c *call, from, to State, user, reason string) {
	c.State = to
	t := Transition{Call: c.snapshot(), From: from, To: to, Time: time.Now(), User: user, Reason: reason}
	if to == Ringing {
		t.Time = c.Started
	}
	m.pending = append(m.pending, t)
	m.opts.Logger.Info("calls: "+string(to), "call", c.ID, "from", from, "user", user, "reason", reason)
}

// flush tells Notify of the queued transitions in the order they were
// made: whoever flushes takes every pending one, under notifyMu.
func (m *Manager) flush() {
	m.notifyMu.Lock()
	defer m.notifyMu.Unlock()
	m.mu.Lock()
	p := m.pending
	m.pending = nil
	m.mu.Unlock()
	for _, t := range p {
		m.opts.Notify(t)
	}
}

func (c *call) snapshot() Call {
	out := c.Call
	out.Declined = slices.Clone(c.Declined)
	out.Phones = slices.Clone(c.Phones)
	return out
}
