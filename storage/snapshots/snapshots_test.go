package snapshots

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/camd-project/camd/storage"
)

func TestSaveListGetDeleteAndBound(t *testing.T) {
	path := filepath.Join(t.TempDir(), "snapshots.db")
	s, err := Open(path, Options{MaxBytes: 40_000}) // 10,000 for owners
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var saved []Snapshot
	for i := range 6 {
		snap, err := s.Save(bytes.Repeat([]byte{byte(i)}, 3000), Snapshot{Time: t0.Add(time.Duration(i) * time.Second), Cause: "manual", By: "u1", Share: Owner})
		if err != nil {
			t.Fatal(err)
		}
		saved = append(saved, snap)
	}
	same, _ := s.Save([]byte{9}, Snapshot{Time: t0.Add(5 * time.Second), Cause: "motion", Share: Motion}) // same instant
	if same.ID == saved[5].ID {
		t.Fatal("two snapshots of the same instant share an ID")
	}
	list, _ := s.List()
	if len(list) != 4 || list[0].ID != same.ID || list[3].ID != saved[3].ID {
		t.Fatalf("list after the bound: %+v", list)
	}
	b, m, err := s.Get(saved[4].ID)
	if err != nil || len(b) != 3000 || b[0] != 4 || m.Cause != "manual" || m.By != "u1" || m.Share != Owner || !m.Time.Equal(saved[4].Time) {
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
	if _, err := s.Save(make([]byte, 6000), Snapshot{Time: t0, Share: Owner}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized: %v", err)
	}
	if _, err := s.Save([]byte{1}, Snapshot{Time: t0}); !errors.Is(err, ErrShare) {
		t.Fatalf("no share: %v", err)
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
	if _, err := s.Save([]byte{1}, Snapshot{Time: time.Now(), Share: Viewer}); err != nil {
		t.Fatal(err)
	}
}

// TestViewerSavesCannotPushOutOthers: viewers saving pictures in a loop
// forget only older viewers' pictures; the owner's, the motion events'
// and those saved before shares existed (counted as the owner's) stay.
// Motion fills its own share and leaves the owner's alone.
func TestViewerSavesCannotPushOutOthers(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "snapshots.db"), Options{MaxBytes: 40_000, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Second) }
	pic := bytes.Repeat([]byte{1}, 3000)
	// A snapshot saved by an older camd: no share, cause manual.
	old := Snapshot{ID: "0000000000000001", Time: time.Unix(0, 1), Size: 3000, Cause: "manual"}
	s.db.Update(func(tx *bbolt.Tx) error {
		k, _ := idKey(old.ID)
		v, _ := json.Marshal(old)
		tx.Bucket(bucketMeta).Put(k, v)
		return tx.Bucket(bucketJPEG).Put(k, pic)
	})
	var kept []string
	for i, share := range []string{Owner, Owner, Motion, Motion, Motion} {
		snap, err := s.Save(pic, Snapshot{Time: at(i), Cause: "manual", Share: share})
		if err != nil {
			t.Fatal(err)
		}
		kept = append(kept, snap.ID)
	}
	kept = append(kept, old.ID)
	var viewers []string
	for i := range 100 {
		snap, err := s.Save(pic, Snapshot{Time: at(100 + i), Cause: "manual", By: "viewer", Share: Viewer})
		if err != nil {
			t.Fatal(err)
		}
		viewers = append(viewers, snap.ID)
	}
	have, _ := s.Have(append(slices.Clone(kept), viewers...)...)
	for _, id := range kept {
		if !have[id] {
			t.Errorf("viewers' saves pushed out %s", id)
		}
	}
	// The viewers' share (10,000 bytes) holds their last three.
	for i, id := range viewers {
		if want := i >= 97; have[id] != want {
			t.Errorf("viewer snapshot %d kept %v, want %v", i, have[id], want)
		}
	}
	// Motion beyond its share (20,000 bytes: six pictures) forgets the
	// oldest motion pictures, not the owner's.
	for i := range 10 {
		if _, err := s.Save(pic, Snapshot{Time: at(300 + i), Cause: "motion", Share: Motion}); err != nil {
			t.Fatal(err)
		}
	}
	have, _ = s.Have(kept...)
	if !have[kept[0]] || !have[kept[1]] || !have[old.ID] || have[kept[2]] {
		t.Errorf("after motion filled its share: %v", have)
	}
	if _, m, err := s.Get(old.ID); err != nil || m.Share != Owner {
		t.Errorf("an older camd's snapshot: %v %+v", err, m)
	}
	list, _ := s.List()
	per := map[string]int{}
	for _, m := range list {
		per[m.share()] += m.Size
	}
	if per[Motion] != 18000 || per[Owner] != 9000 || per[Viewer] != 9000 {
		t.Errorf("bytes per share: %v", per)
	}
}

// TestUnreadableFileIsLeftAlone: a snapshots file that cannot be opened
// (here a directory in its place: root opens any file whatever its mode)
// is not damaged; Open fails and moves nothing aside.
func TestUnreadableFileIsLeftAlone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "snapshots.db")
	os.Mkdir(path, 0o700)
	if _, err := Open(path, Options{}); err == nil || errors.Is(err, storage.ErrDamaged) {
		t.Fatalf("open: %v", err)
	}
	if fi, err := os.Stat(path); err != nil || !fi.IsDir() {
		t.Fatalf("moved: %v", err)
	}
	if m, _ := filepath.Glob(storage.AsideGlob(path)); len(m) != 0 {
		t.Fatalf("moved aside: %v", m)
	}
}
