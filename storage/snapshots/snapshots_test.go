package snapshots

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestSaveListGetDeleteAndBound(t *testing.T) {
	path := filepath.Join(t.TempDir(), "snapshots.db")
	s, err := Open(path, Options{MaxBytes: 10_000})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var saved []Snapshot
	for i := range 6 {
		snap, err := s.Save(bytes.Repeat([]byte{byte(i)}, 3000), t0.Add(time.Duration(i)*time.Second), "manual")
		if err != nil {
			t.Fatal(err)
		}
		saved = append(saved, snap)
	}
	same, _ := s.Save([]byte{9}, t0.Add(5*time.Second), "motion") // same instant
	if same.ID == saved[5].ID {
		t.Fatal("two snapshots of the same instant share an ID")
	}
	list, _ := s.List()
	if len(list) != 4 || list[0].ID != same.ID || list[3].ID != saved[3].ID {
		t.Fatalf("list after the bound: %+v", list)
	}
	b, m, err := s.Get(saved[4].ID)
	if err != nil || len(b) != 3000 || b[0] != 4 || m.Cause != "manual" || !m.Time.Equal(saved[4].Time) {
		t.Fatalf("Get: %v %+v", err, m)
	}
	if _, _, err := s.Get(saved[0].ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a forgotten snapshot: %v", err)
	}
	for _, bad := range []string{"", "zz", "../../etc/passwd", "0011"} {
		if _, _, err := s.Get(bad); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get(%q): %v", bad, err)
		}
	}
	if err := s.Delete(saved[4].ID); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(saved[4].ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if _, err := s.Save(make([]byte, 6000), t0, ""); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized: %v", err)
	}
}

func TestDamagedFileIsMovedAside(t *testing.T) {
	path := filepath.Join(t.TempDir(), "snapshots.db")
	os.WriteFile(path, []byte("not a database"), 0o600)
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Quarantined == "" {
		t.Fatal("damaged file not moved aside")
	}
	if _, err := s.Save([]byte{1}, time.Now(), ""); err != nil {
		t.Fatal(err)
	}
}
