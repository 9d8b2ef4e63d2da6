package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/camd-project/camd/storage/eventlog"
)

// Why a subscription ends.
var (
	// ErrOverflow: the subscriber fell Options.Buffer events behind.
	ErrOverflow = errors.New("events: subscriber too far behind")
	// ErrEnded: the subscriber may no longer have the stream (revoked,
	// expired, role changed); the error says why.
	ErrEnded = errors.New("events: stream ended")
	// ErrClosed: the bus is closed (camd is stopping).
	ErrClosed = errors.New("events: closed")
)

// Options tune a Bus. The zero value means defaults.
type Options struct {
	// Buffer is how many events a subscriber may be behind before it is
	// cut off (default 1024). The events are shared: a subscriber costs
	// a pointer per event it is behind, and the events themselves stay
	// only as long as the slowest subscriber needs them.
	Buffer int
	// HistoryPage is how many missed events a resuming subscriber reads
	// from the log at a time (default 100).
	HistoryPage int
}

// History is the log the missed events are read from (*eventlog.Log,
// or a view of it).
type History interface {
	Query(eventlog.Query) ([]eventlog.Event, error)
	LastID() (uint64, error)
}

// Message is an event as subscribers get it. Subscribers share it: they
// must not change it.
type Message struct {
	ID   uint64
	Kind string
	// JSON is the event's JSON, encoded once for every subscriber.
	JSON []byte
	// SSE is the event as a block of a server-sent event stream: an
	// "id:" line, a "data:" line with the JSON, and the empty line.
	SSE []byte
}

func message(e eventlog.Event) *Message {
	b, _ := json.Marshal(e) // an event the log stored encodes
	sse := fmt.Appendf(make([]byte, 0, len(b)+32), "id: %d\ndata: %s\n\n", e.ID, b)
	return &Message{ID: e.ID, Kind: e.Kind, JSON: b, SSE: sse}
}

// Bus hands each event published to the subscribers that may see it.
type Bus struct {
	opts Options

	mu        sync.Mutex
	last      uint64 // the newest ID published
	subs      map[*Subscription]struct{}
	closed    bool
	published uint64
	cutOff    uint64
}

// New returns a bus with no subscribers.
func New(opts Options) *Bus {
	if opts.Buffer <= 0 {
		opts.Buffer = 1024
	}
	if opts.HistoryPage <= 0 {
		opts.HistoryPage = 100
	}
	return &Bus{opts: opts, subs: map[*Subscription]struct{}{}}
}

// Publish hands e to every subscriber that wants it. It never waits: a
// subscriber with no room left is cut off. Events must be published in
// the order of their IDs (eventlog.Options.Notify is).
func (b *Bus) Publish(e eventlog.Event) {
	m := message(e)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.last = max(b.last, e.ID)
	b.published++
	for s := range b.subs {
		if e.ID <= s.seam || !s.wants(e.Kind) {
			continue
		}
		select {
		case s.live <- m:
		default:
			b.cutOff++
			b.end(s, fmt.Errorf("%w: %d events behind", ErrOverflow, cap(s.live)))
		}
	}
}

// Subscriber says who subscribes and what to.
type Subscriber struct {
	// User is the subscriber's user ID; Owner whether it has the owner
	// role (viewers get only the media events, Visible).
	User  string
	Owner bool
	// Kinds are the types wanted, as eventlog.Query's (none: all).
	Kinds []string
	// Resume asks first for the events after After that the log holds
	// (the last ID the subscriber saw: SSE's Last-Event-ID); without it
	// only the events published from now on come.
	Resume bool
	After  uint64
}

// Subscription is one subscriber's stream. Only one goroutine may call
// Next.
type Subscription struct {
	bus     *Bus
	sub     Subscriber
	history History
	// seam: the history holds the events up to it, the live queue those
	// after it.
	seam uint64
	next uint64 // the history is read up to here
	page []eventlog.Event
	live chan *Message
	done chan struct{}
	err  error // why it ended; set (under bus.mu) before done closes
}

// Subscribe starts a subscription; h is where missed events are read
// from when s.Resume is set. The caller ends it with Close.
func (b *Bus) Subscribe(h History, s Subscriber) (*Subscription, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, ErrClosed
	}
	sub := &Subscription{bus: b, sub: s, history: h, seam: b.last,
		live: make(chan *Message, b.opts.Buffer), done: make(chan struct{})}
	if s.Resume {
		// No event is published while the lock is held, so every event
		// up to the seam is in the log (it is stored before it is
		// published) and every later one will be queued.
		last, err := h.LastID()
		if err != nil {
			return nil, fmt.Errorf("events: %w", err)
		}
		sub.seam = max(sub.seam, last)
		sub.next = min(s.After, sub.seam)
	} else {
		sub.next = sub.seam
	}
	b.subs[sub] = struct{}{}
	return sub, nil
}

// wants reports whether the subscriber may see and asked for kind.
func (s *Subscription) wants(kind string) bool {
	return Visible(kind, s.sub.Owner) && eventlog.KindMatches(s.sub.Kinds, kind)
}

// end ends s with err; the caller holds b.mu.
func (b *Bus) end(s *Subscription, err error) {
	if _, ok := b.subs[s]; !ok {
		return
	}
	delete(b.subs, s)
	s.err = err
	close(s.done)
}

// Next returns the next event: first those missed (from the history),
// then those published since Subscribe, in ID order. It waits until one
// comes, the subscription ends (its error: ErrOverflow, ErrEnded,
// ErrClosed, or one reading the history), ctx ends, or idle fires (then
// it returns nil, nil: time for a heartbeat). An ended subscription
// reports it at once, before what is still queued.
func (s *Subscription) Next(ctx context.Context, idle <-chan time.Time) (*Message, error) {
	select {
	case <-s.done:
		return nil, s.err
	default:
	}
	if s.next < s.seam {
		if len(s.page) == 0 {
			page, err := s.history.Query(eventlog.Query{
				After: s.next, Before: s.seam + 1, Oldest: true, Limit: s.bus.opts.HistoryPage,
				Kinds: s.sub.Kinds, Keep: func(e eventlog.Event) bool { return Visible(e.Kind, s.sub.Owner) },
			})
			if err != nil {
				return nil, fmt.Errorf("events: reading missed events: %w", err)
			}
			if s.page = page; len(page) == 0 {
				s.next = s.seam // the rest was forgotten, or is not for this subscriber
			}
		}
		if len(s.page) > 0 {
			e := s.page[0]
			s.page, s.next = s.page[1:], e.ID
			return message(e), nil
		}
	}
	select {
	case m := <-s.live: // before idle, even when both are ready
		return m, nil
	default:
	}
	select {
	case m := <-s.live:
		return m, nil
	case <-s.done:
		return nil, s.err
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-idle:
		return nil, nil
	}
}

// Done is closed when the subscription ends; Err then says why.
func (s *Subscription) Done() <-chan struct{} { return s.done }

// Err says why the subscription ended (nil while it runs).
func (s *Subscription) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

// Close ends the subscription. It is safe to call twice.
func (s *Subscription) Close() {
	s.bus.mu.Lock()
	defer s.bus.mu.Unlock()
	s.bus.end(s, ErrClosed)
}

// Held is a subscription as the session guard sees it.
type Held struct {
	User  string
	Owner bool
}

// Subscriptions lists who holds a subscription now.
func (b *Bus) Subscriptions() []Held {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]Held, 0, len(b.subs))
	for s := range b.subs {
		out = append(out, Held{User: s.sub.User, Owner: s.sub.Owner})
	}
	return out
}

// Stats are a bus's counters.
type Stats struct {
	Subscribers int
	// Published counts the events published; CutOff the subscribers
	// cut off for falling Options.Buffer events behind.
	Published, CutOff uint64
	// MaxQueued is the most events waiting for one subscriber now
	// (at most Options.Buffer).
	MaxQueued int
}

// Stats returns the bus's counters.
func (b *Bus) Stats() Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := Stats{Subscribers: len(b.subs), Published: b.published, CutOff: b.cutOff}
	for s := range b.subs {
		st.MaxQueued = max(st.MaxQueued, len(s.live))
	}
	return st
}

// EndUser ends the subscriptions of a user, with the reason their
// streams say, and returns how many it ended.
func (b *Bus) EndUser(user, reason string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for s := range b.subs {
		if s.sub.User == user {
			b.end(s, fmt.Errorf("%w: %s", ErrEnded, reason))
			n++
		}
	}
	return n
}

// Close ends every subscription (ErrClosed) and refuses new ones. It is
// safe to call twice.
func (b *Bus) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for s := range b.subs {
		b.end(s, ErrClosed)
	}
}
