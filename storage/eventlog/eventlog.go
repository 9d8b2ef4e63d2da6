package eventlog

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/camd-project/camd/storage"
)

// ErrNotFound: no event with that ID.
var ErrNotFound = errors.New("eventlog: no such event")

// Event is one entry of the log.
type Event struct {
	ID      uint64    `json:"id"`
	Time    time.Time `json:"time"`
	Kind    string    `json:"kind"`
	Message string    `json:"message,omitempty"`
	// End is set on events that last, such as a motion span.
	End  time.Time         `json:"end,omitzero"`
	Data map[string]string `json:"data,omitempty"`
}

// Options tune a Log. The zero value means defaults.
type Options struct {
	// Max is how many events are kept (default 10000).
	Max int
}

// Log is the event log.
type Log struct {
	cat  *storage.Catalog
	opts Options
}

// New returns the log kept in cat.
func New(cat *storage.Catalog, opts Options) *Log {
	if opts.Max <= 0 {
		opts.Max = 10000
	}
	return &Log{cat: cat, opts: opts}
}

func key(id uint64) []byte { return binary.BigEndian.AppendUint64(nil, id) }

// Add appends an event (its Time defaults to now) and returns its ID.
func (l *Log) Add(e Event) (uint64, error) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	err := l.cat.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(storage.BucketEvents)
		id, err := b.NextSequence()
		if err != nil {
			return err
		}
		e.ID = id
		v, err := json.Marshal(e)
		if err != nil {
			return err
		}
		if err := b.Put(key(id), v); err != nil {
			return err
		}
		// Forget the oldest beyond Max.
		c := b.Cursor()
		for k, _ := c.First(); len(k) == 8 && binary.BigEndian.Uint64(k)+uint64(l.opts.Max) <= id; k, _ = c.Next() {
			if err := c.Delete(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("eventlog: %w", err)
	}
	return e.ID, nil
}

// Update changes an event in place.
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

// List returns up to limit events (default 100) of kind (all kinds for
// "") that happened in [from, to), newest first.
func (l *Log) List(from, to time.Time, kind string, limit int) ([]Event, error) {
	if limit <= 0 {
		limit = 100
	}
	out := []Event{}
	err := l.cat.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(storage.BucketEvents).Cursor()
		for k, v := c.Last(); k != nil && len(out) < limit; k, v = c.Prev() {
			var e Event
			if len(k) != 8 || json.Unmarshal(v, &e) != nil {
				continue
			}
			end := e.End
			if end.IsZero() {
				end = e.Time
			}
			if !to.IsZero() && !e.Time.Before(to) {
				continue
			}
			if !from.IsZero() && end.Before(from) {
				// Events are in time order, give or take a clock change.
				if e.Time.Before(from.Add(-time.Hour)) {
					break
				}
				continue
			}
			if kind != "" && e.Kind != kind {
				continue
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}
