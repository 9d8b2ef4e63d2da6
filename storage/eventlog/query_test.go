package eventlog

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/camd-project/camd/storage"
)

func openLog(t *testing.T, opts Options) (*Log, *storage.Catalog) {
	t.Helper()
	cat, err := storage.OpenCatalog(filepath.Join(t.TempDir(), "catalog.db"), storage.CatalogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cat.Check(); err != nil && !errors.Is(err, berrors.ErrDatabaseNotOpen) {
			t.Error(err)
		}
		cat.Close()
	})
	return New(cat, opts), cat
}

func ids(evs []Event) []uint64 {
	var out []uint64
	for _, e := range evs {
		out = append(out, e.ID)
	}
	return out
}

// Query pages by ID both ways, selects types by name and by family, and
// lets the caller keep some (the API's roles).
func TestQuery(t *testing.T) {
	l, _ := openLog(t, Options{Camera: "cam1"})
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	kinds := []string{"motion", "recording.paused", "user.revoked", "recording.resumed", "motion", "settings.changed"}
	for i, k := range kinds {
		if _, err := l.Add(Event{Time: t0.Add(time.Duration(i) * time.Minute), Kind: k}); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		name string
		q    Query
		want []uint64
	}{
		{"newest first", Query{}, []uint64{6, 5, 4, 3, 2, 1}},
		{"after, oldest first", Query{After: 2, Oldest: true}, []uint64{3, 4, 5, 6}},
		{"after, two at a time", Query{After: 2, Oldest: true, Limit: 2}, []uint64{3, 4}},
		{"after the newest", Query{After: 6, Oldest: true}, nil},
		{"before", Query{Before: 4}, []uint64{3, 2, 1}},
		{"before beyond the newest", Query{Before: 100, Limit: 2}, []uint64{6, 5}},
		{"between", Query{After: 1, Before: 5, Oldest: true}, []uint64{2, 3, 4}},
		{"a family", Query{Kinds: []string{"recording.*"}, Oldest: true}, []uint64{2, 4}},
		{"a type and a family", Query{Kinds: []string{"motion", "user.*"}}, []uint64{5, 3, 1}},
		{"a type is not a family", Query{Kinds: []string{"recording"}}, nil},
		{"kept", Query{Keep: func(e Event) bool { return e.Kind != "user.revoked" }, Limit: 3}, []uint64{6, 5, 4}},
		{"time range", Query{From: t0.Add(time.Minute), To: t0.Add(3 * time.Minute), Oldest: true}, []uint64{2, 3}},
		{"time range, newest first", Query{From: t0.Add(time.Minute), To: t0.Add(3 * time.Minute)}, []uint64{3, 2}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := l.Query(c.q)
			if err != nil || !slices.Equal(ids(got), c.want) {
				t.Fatalf("got %v, %v; want %v", ids(got), err, c.want)
			}
			for _, e := range got {
				if e.Camera != "cam1" || e.Kind != kinds[e.ID-1] {
					t.Errorf("event %+v", e)
				}
			}
		})
	}
	if last, err := l.LastID(); last != 6 || err != nil {
		t.Fatalf("last ID %d, %v", last, err)
	}
}

// Records written before the event model (type under "kind", snapshot in
// the data) read as events of it.
func TestOldRecordsRead(t *testing.T) {
	l, cat := openLog(t, Options{})
	err := cat.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(storage.BucketEvents)
		id, _ := b.NextSequence()
		return b.Put(key(id), []byte(`{"id":1,"time":"2025-01-01T00:00:00Z","kind":"motion","message":"motion (pir)","data":{"cause":"pir","snapshot":"s1"}}`))
	})
	if err != nil {
		t.Fatal(err)
	}
	evs, err := l.Query(Query{Kinds: []string{"motion"}})
	if err != nil || len(evs) != 1 {
		t.Fatalf("%+v %v", evs, err)
	}
	if e := evs[0]; e.Kind != "motion" || e.Snapshot != "s1" || e.Data["cause"] != "pir" || e.Data["snapshot"] != "" {
		t.Fatalf("read %+v", e)
	}
	b, _ := json.Marshal(evs[0])
	var m map[string]any
	json.Unmarshal(b, &m)
	if m["type"] != "motion" || m["kind"] != nil || m["snapshot"] != "s1" {
		t.Fatalf("written as %s", b)
	}
}

// Events added from many goroutines at once are committed in batches,
// each Add returns its own event's ID, and Notify hears of every event
// once, in ID order.
func TestConcurrentAddsNotifyInOrder(t *testing.T) {
	var mu sync.Mutex
	var heard []Event
	l, _ := openLog(t, Options{Notify: func(e Event) {
		mu.Lock() // only to satisfy the race detector: calls never overlap
		heard = append(heard, e)
		mu.Unlock()
	}})
	const n, workers = 400, 8
	got := make([]uint64, n)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				id, err := l.Add(Event{Kind: "test", Message: fmt.Sprint(i)})
				if err != nil {
					t.Error(err)
					return
				}
				got[i] = id
			}
		})
	}
	wg.Wait()
	if len(heard) != n {
		t.Fatalf("heard %d events, want %d", len(heard), n)
	}
	for i, e := range heard {
		if e.ID != uint64(i+1) {
			t.Fatalf("heard event %d as the %dth", e.ID, i+1)
		}
		if got[mustAtoi(t, e.Message)] != e.ID {
			t.Fatalf("event %q stored as %d, its Add returned %d", e.Message, e.ID, got[mustAtoi(t, e.Message)])
		}
	}
	stored, _ := l.Query(Query{Oldest: true, Limit: n})
	if len(stored) != n || stored[n-1].ID != n {
		t.Fatalf("stored %d events", len(stored))
	}
}

func mustAtoi(t *testing.T, s string) int {
	var i int
	if _, err := fmt.Sscan(s, &i); err != nil {
		t.Fatal(err)
	}
	return i
}

// An event that cannot be stored fails alone; a commit that fails fails
// every Add of its batch and tells Notify nothing, and the log does not
// wedge.
func TestFailedAdds(t *testing.T) {
	heard := 0
	l, cat := openLog(t, Options{Notify: func(Event) { heard++ }})
	if _, err := l.Add(Event{Kind: "ok"}); err != nil {
		t.Fatal(err)
	}
	if id, err := l.Add(Event{Kind: "far", Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}); err == nil || id != 0 {
		t.Fatalf("an event in the year 10000: %d, %v", id, err)
	}
	if id, err := l.Add(Event{Kind: "ok"}); err != nil || id != 2 {
		t.Fatalf("add after: %d, %v", id, err)
	}
	cat.Close()
	for range 2 {
		if id, err := l.Add(Event{Kind: "lost"}); err == nil || id != 0 {
			t.Fatalf("add to a closed catalog: %d, %v", id, err)
		}
	}
	if heard != 2 {
		t.Fatalf("notified %d times, want 2", heard)
	}
}
