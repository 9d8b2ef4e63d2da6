package webhooks

import (
	"container/heap"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"go.etcd.io/bbolt"

	"github.com/camd-project/camd/device/events"
	"github.com/camd-project/camd/storage/eventlog"
)

// Errors of the webhooks.
var (
	ErrNotFound = errors.New("webhooks: no such webhook")
	ErrURL      = errors.New("webhooks: the URL must be http:// or https:// with a host")
	ErrTooMany  = errors.New("webhooks: too many webhooks")
	ErrType     = errors.New("webhooks: unknown event type")
	ErrClosed   = errors.New("webhooks: stopped")
)

// MaxHooks is the most webhooks the owner may configure.
const MaxHooks = 16

// Catalog buckets: everything is under "webhooks".
var (
	bucketRoot  = []byte("webhooks")
	bucketHooks = []byte("hooks") // hook ID → hook (JSON)
	bucketQueue = []byte("queue") // sequence (8 bytes, big-endian) → delivery (JSON)
	bucketLog   = []byte("log")   // hook ID → bucket: sequence → Attempt (JSON)
	keyCursor   = []byte("cursor")
)

// Hook is one URL the owner configured.
type Hook struct {
	ID  string `json:"id"`
	URL string `json:"url"`
	// Types are the event types it gets ("family.*" for a family); none:
	// every type.
	Types []string `json:"types,omitempty"`
	// Secret signs its deliveries ("whsec_" and base64): Add returns it,
	// List does not.
	Secret  string    `json:"secret,omitempty"`
	Created time.Time `json:"created"`
	// After is the newest event when it was made: it gets later ones.
	After uint64 `json:"after"`
	// Disabled is when camd disabled it (it failed for DisableAfter),
	// with why.
	Disabled       time.Time `json:"disabled,omitzero"`
	DisabledReason string    `json:"disabled_reason,omitempty"`
	// FailingSince is the first failure since the last success.
	FailingSince time.Time `json:"failing_since,omitzero"`
	LastSuccess  time.Time `json:"last_success,omitzero"`
	// Queued is how many deliveries wait for it (List fills it in).
	Queued int `json:"queued"`
}

func (h *Hook) wants(kind string, id uint64) bool {
	return h.Disabled.IsZero() && id > h.After && eventlog.KindMatches(h.Types, kind)
}

// Attempt is one line of a hook's delivery log.
type Attempt struct {
	ID       string    `json:"id"` // the webhook-id
	Event    uint64    `json:"event,omitempty"`
	Type     string    `json:"type"`
	Time     time.Time `json:"time"`
	Attempt  int       `json:"attempt"`
	Status   int       `json:"status,omitempty"`
	Error    string    `json:"error,omitempty"`
	Duration float64   `json:"duration_ms"`
	// Outcome: "delivered", "retry" (at Next), "dropped" (the hook was
	// disabled), "test".
	Outcome string    `json:"outcome"`
	Next    time.Time `json:"next,omitzero"`
}

// delivery is a queued message for one hook.
type delivery struct {
	Hook     string          `json:"hook"`
	ID       string          `json:"id"`
	Event    uint64          `json:"event"`
	Type     string          `json:"type"`
	Body     json.RawMessage `json:"body"`
	Attempts int             `json:"attempts"`
	Next     time.Time       `json:"next"`
}

// catalog is the bbolt file the hooks and the queue are kept in
// (*storage.Catalog).
type catalog interface {
	Update(func(*bbolt.Tx) error) error
	View(func(*bbolt.Tx) error) error
}

// bus is where events come from (*events.Bus).
type bus interface {
	Subscribe(events.History, events.Subscriber) (*events.Subscription, error)
}

// Options configure a Sink. Catalog, Bus and History are required; the
// zero value of the others means defaults.
type Options struct {
	Catalog catalog
	Bus     bus
	History events.History
	// Client sends the deliveries (default: 10 s timeout, redirects not
	// followed, the system's roots).
	Client *http.Client
	// MaxQueue bounds the deliveries kept (default 10,000): past it the
	// sink waits, and the event log holds what it has not queued yet.
	MaxQueue int
	// Workers is how many deliveries are sent at once (default 8).
	Workers int
	// RetryBase and RetryMax bound the backoff (default 5 s and 1 h):
	// attempt n waits between half and all of RetryBase·2^(n-1).
	RetryBase, RetryMax time.Duration
	// DisableAfter disables a hook that has failed that long (24 h).
	DisableAfter time.Duration
	// LogSize is how many attempts each hook's log keeps (default 50).
	LogSize int
	// Event stores an event (webhook.disabled) in the event log.
	Event func(eventlog.Event)
	// Now is the clock (default time.Now).
	Now       func() time.Time
	UserAgent string
	Logger    *slog.Logger
}

// Sink is the webhooks: the hooks, the queue and the deliveries.
type Sink struct {
	opts Options

	mu       sync.Mutex
	due      queue             // deliveries not being sent, by Next
	inflight map[uint64]string // sequence → hook, being sent
	gone     map[uint64]bool   // being sent, and deleted from the catalog meanwhile
	room     chan struct{}     // signalled when a delivery leaves
	wake     chan struct{}     // signalled when a delivery is due earlier
	closed   bool
	running  sync.WaitGroup
	// cursorAt is the cursor as last written (only consume uses it).
	cursorAt uint64
	// records take the attempts' outcomes to commits (while Run runs).
	records chan *record
	// The counts since camd started (Stats).
	delivered, failed, dropped uint64
}

// cursorLag is how many events without a delivery the cursor may lag.
const cursorLag = 256

// New opens the webhooks kept in the catalog and loads their queue.
func New(opts Options) (*Sink, error) {
	if opts.Client == nil {
		opts.Client = &http.Client{
			Timeout:       10 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if opts.MaxQueue <= 0 {
		opts.MaxQueue = 10000
	}
	if opts.Workers <= 0 {
		opts.Workers = 8
	}
	if opts.RetryBase <= 0 {
		opts.RetryBase = 5 * time.Second
	}
	if opts.RetryMax <= 0 {
		opts.RetryMax = time.Hour
	}
	if opts.DisableAfter <= 0 {
		opts.DisableAfter = 24 * time.Hour
	}
	if opts.LogSize <= 0 {
		opts.LogSize = 50
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Event == nil {
		opts.Event = func(eventlog.Event) {}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "camd-webhooks"
	}
	s := &Sink{opts: opts, inflight: map[uint64]string{}, gone: map[uint64]bool{},
		room: make(chan struct{}, 1), wake: make(chan struct{}, 1)}
	err := opts.Catalog.Update(func(tx *bbolt.Tx) error {
		root, err := tx.CreateBucketIfNotExists(bucketRoot)
		if err != nil {
			return err
		}
		for _, name := range [][]byte{bucketHooks, bucketQueue, bucketLog} {
			if _, err := root.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return root.Bucket(bucketQueue).ForEach(func(k, v []byte) error {
			var d delivery
			if err := json.Unmarshal(v, &d); err != nil {
				return err
			}
			heap.Push(&s.due, item{seq: binary.BigEndian.Uint64(k), next: d.Next, hook: d.Hook})
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("webhooks: opening the queue: %w", err)
	}
	return s, nil
}

// Queued is how many deliveries wait in the catalog.
func (s *Sink) Queued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queuedLocked()
}

func (s *Sink) queuedLocked() int { return len(s.due) + len(s.inflight) - len(s.gone) }

// Stats counts the queued deliveries' attempts since camd started
// (the metrics' sink series); a Test's are not among them.
type Stats struct {
	// Delivered: answered 2xx. Failed: attempts answered otherwise or
	// not at all (each retry counts). Dropped: deliveries given up,
	// their hook disabled or removed.
	Delivered, Failed, Dropped uint64
	// Queued is Queued().
	Queued int
}

// Stats reads the counters.
func (s *Sink) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{Delivered: s.delivered, Failed: s.failed, Dropped: s.dropped, Queued: s.queuedLocked()}
}

// count counts an attempt's outcome.
func (s *Sink) count(outcome string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch outcome {
	case "delivered":
		s.delivered++
	case "retry":
		s.failed++
	case "dropped":
		s.dropped++
	}
}

// perHook counts the deliveries queued for each hook.
func (s *Sink) perHook() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := map[string]int{}
	for _, it := range s.due {
		n[it.hook]++
	}
	for seq, hook := range s.inflight {
		if !s.gone[seq] {
			n[hook]++
		}
	}
	return n
}

// List returns the hooks, without their secrets.
func (s *Sink) List() ([]Hook, error) {
	var hooks []Hook
	err := s.opts.Catalog.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketRoot).Bucket(bucketHooks).ForEach(func(k, v []byte) error {
			var h Hook
			if err := json.Unmarshal(v, &h); err != nil {
				return err
			}
			h.Secret = ""
			hooks = append(hooks, h)
			return nil
		})
	})
	n := s.perHook()
	for i := range hooks {
		hooks[i].Queued = n[hooks[i].ID]
	}
	slices.SortFunc(hooks, func(a, b Hook) int { return a.Created.Compare(b.Created) })
	return hooks, err
}

// CheckURL reports whether u may be a webhook's URL: http or https,
// with a host, without credentials in it. The owner may point it at
// the LAN (a home automation server): it is the owner's choice.
func CheckURL(u string) error {
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" || p.User != nil || p.Fragment != "" {
		return ErrURL
	}
	return nil
}

// CheckTypes reports whether each of types names a known event type
// or family ("family.*").
func CheckTypes(types []string) error {
	for _, t := range types {
		known := slices.ContainsFunc(events.Types, func(ty events.Type) bool {
			return ty.Name == t || eventlog.KindMatches([]string{t}, ty.Name)
		})
		if !known {
			return fmt.Errorf("%w: %q", ErrType, t)
		}
	}
	return nil
}

// Add configures a new hook for u that gets the events of types (none:
// all) from now on. The answer holds its secret: the only time camd
// shows it.
func (s *Sink) Add(u string, types []string) (Hook, error) {
	if err := CheckURL(u); err != nil {
		return Hook{}, err
	}
	if err := CheckTypes(types); err != nil {
		return Hook{}, err
	}
	last, err := s.opts.History.LastID()
	if err != nil {
		return Hook{}, fmt.Errorf("webhooks: %w", err)
	}
	h := Hook{ID: "wh_" + randomHex(8), URL: u, Types: types, Secret: NewSecret(),
		Created: s.opts.Now().UTC(), After: last}
	err = s.opts.Catalog.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketRoot).Bucket(bucketHooks)
		if b.Stats().KeyN >= MaxHooks {
			return ErrTooMany
		}
		return putJSON(b, []byte(h.ID), h)
	})
	return h, err
}

// Remove deletes a hook with its queued deliveries and its log.
func (s *Sink) Remove(id string) error {
	var seqs []uint64
	err := s.opts.Catalog.Update(func(tx *bbolt.Tx) error {
		root := tx.Bucket(bucketRoot)
		if root.Bucket(bucketHooks).Get([]byte(id)) == nil {
			return ErrNotFound
		}
		if err := root.Bucket(bucketHooks).Delete([]byte(id)); err != nil {
			return err
		}
		if root.Bucket(bucketLog).Bucket([]byte(id)) != nil {
			if err := root.Bucket(bucketLog).DeleteBucket([]byte(id)); err != nil {
				return err
			}
		}
		var err error
		seqs, err = dropQueued(root, id)
		return err
	})
	if err == nil {
		s.forget(id, seqs)
	}
	return err
}

// dropQueued deletes hook's deliveries from the queue.
func dropQueued(root *bbolt.Bucket, hook string) ([]uint64, error) {
	var seqs []uint64
	q := root.Bucket(bucketQueue)
	c := q.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		var d delivery
		if json.Unmarshal(v, &d) == nil && d.Hook != hook {
			continue
		}
		seqs = append(seqs, binary.BigEndian.Uint64(k))
	}
	for _, seq := range seqs {
		if err := q.Delete(seqKey(seq)); err != nil {
			return nil, err
		}
	}
	return seqs, nil
}

// forget takes deliveries deleted from the catalog out of the queue.
func (s *Sink) forget(hook string, seqs []uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	gone := map[uint64]bool{}
	for _, seq := range seqs {
		gone[seq] = true
	}
	s.dropped += uint64(len(seqs))
	s.due = slices.DeleteFunc(s.due, func(it item) bool { return gone[it.seq] })
	heap.Init(&s.due)
	for seq := range gone {
		if _, ok := s.inflight[seq]; ok {
			s.gone[seq] = true
		}
	}
	s.signal(s.room)
}

// Deliveries returns a hook's log, newest first.
func (s *Sink) Deliveries(id string) ([]Attempt, error) {
	out := []Attempt{}
	err := s.opts.Catalog.View(func(tx *bbolt.Tx) error {
		root := tx.Bucket(bucketRoot)
		if root.Bucket(bucketHooks).Get([]byte(id)) == nil {
			return ErrNotFound
		}
		b := root.Bucket(bucketLog).Bucket([]byte(id))
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.Last(); k != nil; k, v = c.Prev() {
			var a Attempt
			if err := json.Unmarshal(v, &a); err != nil {
				return err
			}
			out = append(out, a)
		}
		return nil
	})
	// Newest first by when they were made: the outcomes of deliveries
	// are written in batches, so the log's order is the order of the
	// commits, not of the attempts.
	slices.SortStableFunc(out, func(a, b Attempt) int { return b.Time.Compare(a.Time) })
	return out, err
}

// Test sends a "webhook.test" message to a hook now (even a disabled
// one) and logs it; the attempt says what the URL answered.
func (s *Sink) Test(ctx context.Context, id string) (Attempt, error) {
	h, err := s.hook(id)
	if err != nil {
		return Attempt{}, err
	}
	now := s.opts.Now().UTC()
	body, _ := json.Marshal(map[string]any{
		"type": "webhook.test", "timestamp": now,
		"data": map[string]string{"message": "a test of this webhook", "webhook": h.ID},
	})
	d := delivery{Hook: h.ID, ID: "msg_test_" + randomHex(8), Type: "webhook.test", Body: body, Attempts: 1}
	a := s.send(ctx, h, d)
	a.Outcome = "test"
	err = s.opts.Catalog.Update(func(tx *bbolt.Tx) error { return s.logAttempt(tx.Bucket(bucketRoot), h.ID, a) })
	return a, err
}

func (s *Sink) hook(id string) (Hook, error) {
	var h Hook
	err := s.opts.Catalog.View(func(tx *bbolt.Tx) error {
		v := tx.Bucket(bucketRoot).Bucket(bucketHooks).Get([]byte(id))
		if v == nil {
			return ErrNotFound
		}
		return json.Unmarshal(v, &h)
	})
	return h, err
}

// Run queues the events and sends the deliveries until ctx ends.
func (s *Sink) Run(ctx context.Context) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.running.Add(1)
	s.mu.Unlock()
	defer s.running.Done()
	s.records = make(chan *record)
	var committed sync.WaitGroup
	committed.Go(s.commits)
	var wg sync.WaitGroup
	wg.Go(func() { s.dispatch(ctx) })
	s.consume(ctx)
	wg.Wait() // and every attempt that dispatch started
	close(s.records)
	committed.Wait()
}

// consume queues each event after the cursor (events.Follow): after a
// failure of the catalog or the log, again in a while from the cursor.
func (s *Sink) consume(ctx context.Context) {
	cursor := func() (uint64, error) {
		c, err := s.cursor()
		s.cursorAt = c
		return c, err
	}
	events.Follow(ctx, s.opts.Bus, s.opts.History, cursor, s.enqueue, retryConsume,
		func(err error) { s.opts.Logger.Warn("webhooks: events", "err", err) })
}

// retryConsume is how long the sink waits after the catalog failed.
const retryConsume = 5 * time.Second

func (s *Sink) cursor() (uint64, error) {
	var c uint64
	err := s.opts.Catalog.View(func(tx *bbolt.Tx) error {
		if v := tx.Bucket(bucketRoot).Get(keyCursor); len(v) == 8 {
			c = binary.BigEndian.Uint64(v)
		}
		return nil
	})
	return c, err
}

// enqueue queues m for every hook that wants it, and moves the cursor
// past it, in one transaction; it waits while the queue is full.
func (s *Sink) enqueue(ctx context.Context, m *events.Message) error {
	hooks, err := s.List()
	if err != nil {
		return err
	}
	hooks = slices.DeleteFunc(hooks, func(h Hook) bool { return !h.wants(m.Kind, m.ID) })
	if len(hooks) == 0 {
		// Nothing to queue, nothing written; the cursor moves with the
		// next event queued, or every cursorLag events, so that a new
		// subscription does not read far back in the log.
		if m.ID-s.cursorAt >= cursorLag {
			err := s.opts.Catalog.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bucketRoot).Put(keyCursor, seqKey(m.ID)) })
			if err != nil {
				return err
			}
			s.cursorAt = m.ID
		}
		return nil
	}
	for {
		s.mu.Lock()
		full := s.queuedLocked()+len(hooks) > s.opts.MaxQueue
		s.mu.Unlock()
		if !full {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.room:
		}
	}
	var e struct {
		Time time.Time `json:"time"`
	}
	json.Unmarshal(m.JSON, &e)
	body, err := json.Marshal(struct {
		Type      string          `json:"type"`
		Timestamp time.Time       `json:"timestamp"`
		Data      json.RawMessage `json:"data"`
	}{m.Kind, e.Time, m.JSON})
	if err != nil {
		return err
	}
	now := s.opts.Now().UTC()
	var added []item
	err = s.opts.Catalog.Update(func(tx *bbolt.Tx) error {
		root := tx.Bucket(bucketRoot)
		q := root.Bucket(bucketQueue)
		for _, h := range hooks {
			seq, err := q.NextSequence()
			if err != nil {
				return err
			}
			d := delivery{Hook: h.ID, ID: fmt.Sprintf("msg_%d_%s", m.ID, h.ID), Event: m.ID, Type: m.Kind, Body: body, Next: now}
			if err := putJSON(q, seqKey(seq), d); err != nil {
				return err
			}
			added = append(added, item{seq: seq, next: now, hook: h.ID})
		}
		return root.Put(keyCursor, seqKey(m.ID))
	})
	if err != nil {
		return fmt.Errorf("webhooks: queueing: %w", err)
	}
	s.cursorAt = m.ID
	s.mu.Lock()
	for _, it := range added {
		heap.Push(&s.due, it)
	}
	s.mu.Unlock()
	s.signal(s.wake)
	return nil
}

func (s *Sink) signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// dispatch sends the deliveries that are due, Workers at a time.
func (s *Sink) dispatch(ctx context.Context) {
	sem := make(chan struct{}, s.opts.Workers)
	var wg sync.WaitGroup
	defer wg.Wait()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		var wait time.Duration = time.Hour
		for {
			s.mu.Lock()
			if len(s.due) == 0 {
				s.mu.Unlock()
				break
			}
			it := s.due[0]
			if d := it.next.Sub(s.opts.Now()); d > 0 {
				wait = d
				s.mu.Unlock()
				break
			}
			s.mu.Unlock()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			s.mu.Lock()
			if len(s.due) == 0 || s.due[0].seq != it.seq {
				s.mu.Unlock()
				<-sem
				continue
			}
			heap.Pop(&s.due)
			s.inflight[it.seq] = it.hook
			s.mu.Unlock()
			wg.Go(func() {
				defer func() { <-sem }()
				s.attempt(ctx, it)
			})
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-timer.C:
		}
	}
}

// attempt sends one delivery and records the outcome: delivered (out of
// the queue), or tried again later, or the hook disabled.
func (s *Sink) attempt(ctx context.Context, it item) {
	var (
		d  delivery
		h  Hook
		ok bool
	)
	s.opts.Catalog.View(func(tx *bbolt.Tx) error {
		root := tx.Bucket(bucketRoot)
		v := root.Bucket(bucketQueue).Get(seqKey(it.seq))
		hv := root.Bucket(bucketHooks).Get([]byte(it.hook))
		ok = v != nil && hv != nil && json.Unmarshal(v, &d) == nil && json.Unmarshal(hv, &h) == nil
		return nil
	})
	if !ok || !h.Disabled.IsZero() {
		s.finish(it, false, time.Time{})
		return
	}
	d.Attempts++
	a := s.send(ctx, h, d)
	if ctx.Err() != nil {
		// camd is stopping: the delivery stays queued as it was and is
		// sent again at the next start (the receiver deduplicates by ID).
		s.finish(it, true, d.Next)
		return
	}
	r := &record{it: it, d: d, h: h, a: a, done: make(chan error, 1)}
	s.records <- r
	if err := <-r.done; err != nil {
		s.opts.Logger.Warn("webhooks: recording a delivery", "hook", h.ID, "err", err)
		s.finish(it, true, s.opts.Now().Add(s.backoff(d.Attempts)))
		return
	}
	if !r.removed {
		s.count(r.a.Outcome)
	}
	switch {
	case r.disabled:
		s.finish(it, false, time.Time{})
		s.disable(r.h)
	case r.a.Outcome == "retry":
		s.finish(it, true, r.d.Next)
	default: // delivered, dropped
		s.finish(it, false, time.Time{})
	}
}

// record is an attempt's outcome, to be written.
type record struct {
	it       item
	d        delivery
	h        Hook
	a        Attempt
	disabled bool // this attempt disabled the hook
	removed  bool // the delivery was removed meanwhile (and counted then)
	done     chan error
}

// maxBatch is the most outcomes written in one transaction.
const maxBatch = 64

// commits writes the attempts' outcomes until records is closed: those
// that wait while a commit runs go together in the next one, one fsync
// for many deliveries.
func (s *Sink) commits() {
	for r := range s.records {
		batch := []*record{r}
	more:
		for len(batch) < maxBatch {
			select {
			case r, ok := <-s.records:
				if !ok {
					break more
				}
				batch = append(batch, r)
			default:
				break more
			}
		}
		err := s.opts.Catalog.Update(func(tx *bbolt.Tx) error {
			root := tx.Bucket(bucketRoot)
			for _, r := range batch {
				if err := s.apply(root, r); err != nil {
					return err
				}
			}
			return nil
		})
		for _, r := range batch {
			r.done <- err
		}
	}
}

// apply writes one outcome: a delivery leaves the queue, or waits for
// its next attempt, or its hook, failing for DisableAfter, is disabled;
// the attempt goes to the hook's log.
func (s *Sink) apply(root *bbolt.Bucket, r *record) error {
	hooks, q := root.Bucket(bucketHooks), root.Bucket(bucketQueue)
	hv := hooks.Get([]byte(r.h.ID))
	if hv == nil || q.Get(seqKey(r.it.seq)) == nil {
		r.a.Outcome = "dropped" // removed meanwhile
		r.removed = true
		return nil
	}
	if err := json.Unmarshal(hv, &r.h); err != nil {
		return err
	}
	now := s.opts.Now().UTC()
	switch {
	case !r.h.Disabled.IsZero():
		r.a.Outcome = "dropped" // disabled by another attempt
		if err := q.Delete(seqKey(r.it.seq)); err != nil {
			return err
		}
	case r.a.Outcome == "delivered":
		r.h.FailingSince, r.h.LastSuccess = time.Time{}, now
		if err := q.Delete(seqKey(r.it.seq)); err != nil {
			return err
		}
	default:
		if r.h.FailingSince.IsZero() {
			r.h.FailingSince = now
		}
		if now.Sub(r.h.FailingSince) >= s.opts.DisableAfter {
			r.disabled = true
			r.h.Disabled = now
			r.h.DisabledReason = fmt.Sprintf("failed since %s: %s", r.h.FailingSince.Format(time.RFC3339), r.a.Error)
			r.a.Outcome = "dropped"
			if err := q.Delete(seqKey(r.it.seq)); err != nil {
				return err
			}
		} else {
			r.d.Next = now.Add(s.backoff(r.d.Attempts))
			r.a.Next = r.d.Next
			if err := putJSON(q, seqKey(r.it.seq), r.d); err != nil {
				return err
			}
		}
	}
	if err := s.logAttempt(root, r.h.ID, r.a); err != nil {
		return err
	}
	return putJSON(hooks, []byte(r.h.ID), r.h)
}

// finish ends an attempt: the delivery waits again until next, or has
// left the queue.
func (s *Sink) finish(it item, again bool, next time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.inflight, it.seq)
	if again && !s.gone[it.seq] {
		it.next = next
		heap.Push(&s.due, it)
		s.signal(s.wake)
		return
	}
	delete(s.gone, it.seq)
	s.signal(s.room)
}

// disable drops a disabled hook's queue and tells the owner.
func (s *Sink) disable(h Hook) {
	var seqs []uint64
	err := s.opts.Catalog.Update(func(tx *bbolt.Tx) error {
		var err error
		seqs, err = dropQueued(tx.Bucket(bucketRoot), h.ID)
		return err
	})
	if err != nil {
		s.opts.Logger.Warn("webhooks: dropping a disabled hook's queue", "hook", h.ID, "err", err)
	}
	s.forget(h.ID, seqs)
	s.opts.Logger.Warn("webhooks: disabled", "hook", h.ID, "reason", h.DisabledReason)
	s.opts.Event(eventlog.Event{
		Kind:    events.WebhookDisabled,
		Message: "webhook disabled: " + h.DisabledReason,
		Data:    map[string]string{"webhook": h.ID, "url": redact(h.URL), "failing_since": h.FailingSince.Format(time.RFC3339), "dropped": fmt.Sprint(len(seqs))},
	})
}

// redact is u without its query (which may hold a token).
func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return ""
	}
	p.RawQuery, p.User = "", nil
	return p.String()
}

// backoff is how long attempt n waits: between half and all of
// RetryBase·2^(n-1), at most RetryMax.
func (s *Sink) backoff(n int) time.Duration {
	d := s.opts.RetryMax
	if n < 30 {
		d = min(s.opts.RetryBase<<(n-1), s.opts.RetryMax)
	}
	return d/2 + mrand.N(d/2+1)
}

// send posts d to h, signed, and says what happened.
func (s *Sink) send(ctx context.Context, h Hook, d delivery) Attempt {
	start := s.opts.Now()
	a := Attempt{ID: d.ID, Event: d.Event, Type: d.Type, Time: start.UTC(), Attempt: d.Attempts}
	ts := start.Unix()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, strings.NewReader(string(d.Body)))
	if err != nil {
		a.Error, a.Outcome = err.Error(), "retry"
		return a
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", s.opts.UserAgent)
	req.Header.Set("webhook-id", d.ID)
	req.Header.Set("webhook-timestamp", fmt.Sprint(ts))
	sig, err := Sign(h.Secret, d.ID, ts, d.Body)
	if err != nil {
		a.Error, a.Outcome = err.Error(), "retry"
		return a
	}
	req.Header.Set("webhook-signature", sig)
	resp, err := s.opts.Client.Do(req)
	a.Duration = float64(time.Since(start).Microseconds()) / 1000
	if err != nil {
		// Without the URL, whose query may hold the receiver's token.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		a.Error, a.Outcome = err.Error(), "retry"
		return a
	}
	drain(resp)
	a.Status = resp.StatusCode
	if resp.StatusCode/100 == 2 {
		a.Outcome = "delivered"
	} else {
		a.Error, a.Outcome = resp.Status, "retry"
	}
	return a
}

// logAttempt appends a to the hook's log, keeping the last LogSize.
func (s *Sink) logAttempt(root *bbolt.Bucket, hook string, a Attempt) error {
	b, err := root.Bucket(bucketLog).CreateBucketIfNotExists([]byte(hook))
	if err != nil {
		return err
	}
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	if err := putJSON(b, seqKey(seq), a); err != nil {
		return err
	}
	if seq > uint64(s.opts.LogSize) {
		c := b.Cursor()
		for k, _ := c.First(); k != nil && binary.BigEndian.Uint64(k) <= seq-uint64(s.opts.LogSize); k, _ = c.First() {
			if err := c.Delete(); err != nil {
				return err
			}
		}
	}
	return nil
}

// Close stops accepting Run and waits for it to return (its context
// must have ended). It is safe to call twice.
func (s *Sink) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.running.Wait()
}

func putJSON(b *bbolt.Bucket, k []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(k, data)
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// item is a queued delivery in memory: its key, when it is due, and
// its hook.
type item struct {
	seq  uint64
	next time.Time
	hook string
}

// queue is a heap of items, the soonest due first.
type queue []item

func (q queue) Len() int { return len(q) }
func (q queue) Less(i, j int) bool {
	if q[i].next.Equal(q[j].next) {
		return q[i].seq < q[j].seq
	}
	return q[i].next.Before(q[j].next)
}
func (q queue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *queue) Push(x any)   { *q = append(*q, x.(item)) }
func (q *queue) Pop() any {
	old := *q
	it := old[len(old)-1]
	*q = old[:len(old)-1]
	return it
}
