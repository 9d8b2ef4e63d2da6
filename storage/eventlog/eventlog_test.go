package eventlog

import (
	"errors"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/camd-project/camd/storage"
)

func TestAddUpdateListForget(t *testing.T) {
	cat, err := storage.OpenCatalog(filepath.Join(t.TempDir(), "catalog.db"), storage.CatalogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	l := New(cat, Options{Max: 5})
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var ids []uint64
	for i := range 8 {
		kind := "motion"
		if i%2 == 1 {
			kind = "recording.paused"
		}
		id, err := l.Add(Event{Time: t0.Add(time.Duration(i) * time.Minute), Kind: kind, Data: map[string]string{"i": string(rune('0' + i))}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	all, _ := l.List(time.Time{}, time.Time{}, "", 0)
	if len(all) != 5 || all[0].ID != ids[7] || all[4].ID != ids[3] {
		t.Fatalf("kept %d events: %+v", len(all), all)
	}
	if err := l.Update(ids[6], func(e *Event) { e.End = e.Time.Add(30 * time.Second) }); err != nil {
		t.Fatal(err)
	}
	if err := l.Update(ids[0], func(*Event) {}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("update of a forgotten event: %v", err)
	}
	motion, _ := l.List(t0.Add(5*time.Minute), t0.Add(7*time.Minute), "motion", 10)
	if len(motion) != 1 || motion[0].ID != ids[6] || motion[0].End.IsZero() {
		t.Fatalf("motion in [5m, 7m): %+v", motion)
	}
	if err := cat.Check(); err != nil {
		t.Fatal(err)
	}
}

// TestAddStampsNow: an event without a time gets the clock's, read once
// (in a synctest bubble, whose clock stands still between sleeps).
func TestAddStampsNow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cat, err := storage.OpenCatalog(filepath.Join(t.TempDir(), "catalog.db"), storage.CatalogOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer cat.Close()
		l := New(cat, Options{})
		time.Sleep(time.Hour)
		want := time.Now()
		if _, err := l.Add(Event{Kind: "motion"}); err != nil {
			t.Fatal(err)
		}
		got, _ := l.List(time.Time{}, time.Time{}, "", 1)
		if len(got) != 1 || !got[0].Time.Equal(want) {
			t.Fatalf("event stamped %+v, want %v", got, want)
		}
	})
}
