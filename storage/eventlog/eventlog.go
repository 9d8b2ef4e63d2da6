package eventlog

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.etcd.io/bbolt"

	"github.com/camd-project/camd/storage"
)

// ErrNotFound: no event with that ID.
var ErrNotFound = errors.New("eventlog: no such event")

// Event is one entry of the log: the one event model that the API lists
// and streams (docs/architecture.md, "Events").
type Event struct {
	// ID grows by one with each event stored, across restarts.
	ID   uint64    `json:"id"`
	Time time.Time `json:"time"`
	// Kind is the event's type: "motion", "recording.paused",
	// "user.revoked", ... (stored and sent as "type"; records written
	// before it was renamed say "kind", and are read the same).
	Kind string `json:"type"`
	// Camera is the camera the event is about: the device's ID unless
	// the producer names another (an NVR's cameras).
	Camera  string `json:"camera,omitempty"`
	Message string `json:"message,omitempty"`
	// End is set on events that last, such as a motion span.
	End time.Time `json:"end,omitzero"`
	// Snapshot is the ID of a saved snapshot of the event (GET
	// /api/v1/snapshots/{id}); SnapshotMissing says it is gone since
	// (set when the event is read, never stored).
	Snapshot        string `json:"snapshot,omitempty"`
	SnapshotMissing bool   `json:"snapshot_missing,omitempty"`
	// Clip is the range of recording that shows the event, if any
	// was recorded (GET /api/v1/recordings/export?from&to).
	Clip *Clip             `json:"clip,omitempty"`
	Data map[string]string `json:"data,omitempty"`
}

// Clip is a range of recording.
type Clip struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to,omitzero"`
}

// UnmarshalJSON reads an event, including those stored before the event
// model: their type under "kind" and their snapshot in the data.
func (e *Event) UnmarshalJSON(b []byte) error {
	type plain Event
	var v struct {
		plain
		OldKind string `json:"kind"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*e = Event(v.plain)
	if e.Kind == "" {
		e.Kind = v.OldKind
	}
	if id := e.Data["snapshot"]; id != "" && e.Snapshot == "" {
		e.Snapshot = id
		delete(e.Data, "snapshot")
	}
	return nil
}

// Options tune a Log. The zero value means defaults.
type Options struct {
	// Max is how many events are kept (default 10000).
	Max int
	// Camera is the Camera of events added without one (the device's
	// ID).
	Camera string
	// Notify, if set, is called with each event once it is stored, in
	// the order of their IDs, one at a time. It must not block: the next
	// events wait for it (device/events' Bus.Publish).
	Notify func(Event)
}

// Log is the event log.
type Log struct {
	cat  *storage.Catalog
	opts Options

	mu      sync.Mutex
	queue   []*pending // events waiting to be stored
	writing bool       // a caller of Add is storing the queue
}

// pending is an event being added.
type pending struct {
	e   Event
	err error
	// wake is told true when its Add is to store the queue, false once
	// another stored its event.
	wake chan bool
}

// New returns the log kept in cat.
func New(cat *storage.Catalog, opts Options) *Log {
	if opts.Max <= 0 {
		opts.Max = 10000
	}
	return &Log{cat: cat, opts: opts}
}

func key(id uint64) []byte { return binary.BigEndian.AppendUint64(nil, id) }

// Add stores an event (its Time defaults to now, its Camera to
// Options.Camera) and returns its ID once it is committed and Notify has
// seen it. Events added together are committed together: one catalog
// commit, whatever their number.
func (l *Log) Add(e Event) (uint64, error) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	if e.Camera == "" {
		e.Camera = l.opts.Camera
	}
	// An event that cannot be stored (a time past the year 9999) must not
	// fail the others committed with it.
	if _, err := json.Marshal(e); err != nil {
		return 0, fmt.Errorf("eventlog: %w", err)
	}
	p := &pending{e: e, wake: make(chan bool, 1)}
	l.mu.Lock()
	l.queue = append(l.queue, p)
	lead := !l.writing
	l.writing = true
	l.mu.Unlock()
	if lead || <-p.wake {
		l.store()
	}
	if p.err != nil {
		return 0, p.err
	}
	return p.e.ID, nil
}

// store commits the queue, tells Notify, then hands the writing over to
// the first event queued since, if any, and wakes the others it stored.
func (l *Log) store() {
	l.mu.Lock()
	batch := l.queue
	l.queue = nil
	l.mu.Unlock()
	err := l.commit(batch)
	for _, p := range batch {
		if p.err = err; err == nil && l.opts.Notify != nil {
			l.opts.Notify(p.e)
		}
	}
	l.mu.Lock()
	if len(l.queue) > 0 {
		l.queue[0].wake <- true
	} else {
		l.writing = false
	}
	l.mu.Unlock()
	for _, p := range batch[1:] {
		p.wake <- false
	}
	// batch[0] is the caller, or was woken to store: it needs no word.
}

// commit stores a batch in one transaction, numbering its events, and
// forgets the oldest beyond Max.
func (l *Log) commit(batch []*pending) error {
	err := l.cat.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(storage.BucketEvents)
		var id uint64
		for _, p := range batch {
			var err error
			if id, err = b.NextSequence(); err != nil {
				return err
			}
			p.e.ID = id
			v, err := json.Marshal(p.e)
			if err != nil {
				return err
			}
			if err := b.Put(key(id), v); err != nil {
				return err
			}
		}
		c := b.Cursor()
		for k, _ := c.First(); len(k) == 8 && binary.BigEndian.Uint64(k)+uint64(l.opts.Max) <= id; k, _ = c.Next() {
			if err := c.Delete(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		for _, p := range batch {
			p.e.ID = 0
		}
		return fmt.Errorf("eventlog: %w", err)
	}
	return nil
}

// Update changes an event in place. Notify is not told: an update
// completes what the event says (a motion span's end), and a new event
// says that it happened (motion.end).
func (l *Log) Update(id uint64, fn func(*Event)) error {
	return l.cat.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(storage.BucketEvents)
		v := b.Get(key(id))
		if v == nil {
			return fmt.Errorf("%w: %d", ErrNotFound, id)
		}
		var e Event
		if err := json.Unmarshal(v, &e); err != nil {
			return fmt.Errorf("eventlog: event %d: %w", id, err)
		}
		fn(&e)
		e.ID = id
		nv, err := json.Marshal(e)
		if err != nil {
			return err
		}
		return b.Put(key(id), nv)
	})
}

// LastID is the ID of the newest event stored (0 before the first).
func (l *Log) LastID() (uint64, error) {
	var id uint64
	err := l.cat.View(func(tx *bbolt.Tx) error {
		id = tx.Bucket(storage.BucketEvents).Sequence()
		return nil
	})
	return id, err
}

// Query selects events. The zero value is the newest 100.
type Query struct {
	// After and Before bound the IDs: only After < ID < Before (0: no
	// bound).
	After, Before uint64
	// From and To bound the time: events that happened in [From, To),
	// or lasted into it (zero: no bound).
	From, To time.Time
	// Kinds are the types wanted; "recording.*" is every type that starts
	// "recording.". None: every type.
	Kinds []string
	// Keep, if set, is asked about each event that the rest selected
	// (the API's roles).
	Keep  func(Event) bool
	Limit int // at most this many (default 100)
	// Oldest lists oldest first (ascending IDs); by default newest first.
	Oldest bool
}

// KindMatches reports whether an event of type kind is one of kinds
// (every type when kinds is empty), where "family.*" matches every type
// that starts with "family.".
func KindMatches(kinds []string, kind string) bool {
	for _, k := range kinds {
		if k == kind {
			return true
		}
		if prefix, ok := strings.CutSuffix(k, "*"); ok && strings.HasPrefix(kind, prefix) {
			return true
		}
	}
	return len(kinds) == 0
}

// timeSlack is how far out of time order events may be (a clock change,
// an event stamped with the time its span started): a scan by time stops
// only this far past the range.
const timeSlack = time.Hour

// Query returns the events q selects.
func (l *Log) Query(q Query) ([]Event, error) {
	if q.Limit <= 0 {
		q.Limit = 100
	}
	out := []Event{}
	err := l.cat.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(storage.BucketEvents).Cursor()
		var k, v []byte
		step := c.Prev
		switch {
		case q.Oldest:
			k, v = c.Seek(key(q.After + 1))
			step = c.Next
		case q.Before > 0:
			k, v = c.Seek(key(q.Before))
			if k == nil {
				k, v = c.Last()
			}
		default:
			k, v = c.Last()
		}
		for ; k != nil && len(out) < q.Limit; k, v = step() {
			if len(k) != 8 {
				continue
			}
			id := binary.BigEndian.Uint64(k)
			if id <= q.After || (q.Before > 0 && id >= q.Before) {
				if q.Oldest {
					break
				}
				continue
			}
			var e Event
			if json.Unmarshal(v, &e) != nil {
				continue
			}
			end := e.End
			if end.IsZero() {
				end = e.Time
			}
			if !q.To.IsZero() && !e.Time.Before(q.To) {
				if q.Oldest && e.Time.After(q.To.Add(timeSlack)) {
					break
				}
				continue
			}
			if !q.From.IsZero() && end.Before(q.From) {
				if !q.Oldest && e.Time.Before(q.From.Add(-timeSlack)) {
					break
				}
				continue
			}
			if !KindMatches(q.Kinds, e.Kind) || (q.Keep != nil && !q.Keep(e)) {
				continue
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

// List returns up to limit events (default 100) of kind (all kinds for
// "") that happened in [from, to), newest first.
func (l *Log) List(from, to time.Time, kind string, limit int) ([]Event, error) {
	q := Query{From: from, To: to, Limit: limit}
	if kind != "" {
		q.Kinds = []string{kind}
	}
	return l.Query(q)
}
