package volume

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"go.etcd.io/bbolt"

	"github.com/camd-project/camd/internal/durable"
)

// TestReuseMakesANewVolumeInPlace: a full volume's file, reused, is a new
// empty volume with its own number, in the same file of the same size
// (the file system allocates nothing), and fills up as a new one does;
// what the old one held is gone.
func TestReuseMakesANewVolumeInPlace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vol-1.db")
	v, err := Create(path, 1, Options{MaxSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for ; ; n++ {
		err := v.Append(frag(1, n), data(20_000, byte(n)), []byte("init"))
		if errors.Is(err, ErrFull) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	v.Close()
	before, _ := os.Stat(path)
	ino := before.Sys().(*syscall.Stat_t).Ino
	// A full volume's file has the volume's size: the next volume made in
	// it has all of it without growing it.
	if before.Size() != 1<<20 {
		t.Fatalf("a full volume's file is %d bytes, want %d", before.Size(), 1<<20)
	}

	// A reader holds it: not reused.
	r, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Reuse(path, 2, Options{MaxSize: 1 << 20}); !errors.Is(err, ErrLocked) {
		t.Fatalf("reuse of a volume being read: %v", err)
	}
	r.Close()

	v, err = Reuse(path, 2, Options{MaxSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if v.ID() != 2 || v.Created().IsZero() {
		t.Fatalf("reused: volume %d created %v", v.ID(), v.Created())
	}
	if err := v.All(func(Fragment) bool { t.Fatal("a fragment survived the reuse"); return false }); err != nil {
		t.Fatal(err)
	}
	m := 0
	for ; ; m++ {
		err := v.Append(frag(1, m), data(20_000, byte(m+7)), []byte("init"))
		if errors.Is(err, ErrFull) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if g, err := v.Growth(20_000); err != nil || g != 0 {
			t.Fatalf("a reused file grows by %d: %v", g, err)
		}
	}
	v.Close()
	after, _ := os.Stat(path)
	if after.Size() != before.Size() || after.Sys().(*syscall.Stat_t).Ino != ino {
		t.Fatalf("file of %d bytes (inode %d) became %d bytes (inode %d)", before.Size(), ino, after.Size(), after.Sys().(*syscall.Stat_t).Ino)
	}
	if m != n {
		t.Errorf("the reused volume held %d fragments, the new one %d", m, n)
	}
	if err := Check(path, Options{}); err != nil {
		t.Fatal(err)
	}
	r, err = Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if b, err := r.Read(frag(1, 3).Key, nil); err != nil || !bytes.Equal(b, data(20_000, 10)) {
		t.Fatalf("read from the reused volume: %v", err)
	}

	if _, err := Reuse(filepath.Join(filepath.Dir(path), "gone.db"), 3, Options{}); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("reuse of a missing file: %v", err)
	}
}

// TestReuseCompletesAnythingInTheFile: whatever a power cut left in the
// file (nothing, a torn first page, another volume's pages), Reuse makes
// it a whole volume.
func TestReuseCompletesAnythingInTheFile(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string][]byte{
		"empty":   nil,
		"zeros":   make([]byte, 3<<20),
		"garbage": bytes.Repeat([]byte("torn "), 10_000),
	} {
		path := filepath.Join(dir, name)
		os.WriteFile(path, content, 0o600)
		v, err := Reuse(path, 9, Options{MaxSize: 4 << 20})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := v.Append(frag(1, 0), data(1000, 1), []byte("init")); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		v.Close()
		if err := Check(path, Options{}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
}

// TestUnfinished tells what an interrupted creation leaves (nothing
// anyone wrote) from files that hold something.
func TestUnfinished(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, b, 0o600)
		return p
	}
	bare := filepath.Join(dir, "bare")
	writeEmptyBBolt(t, bare)
	os.Truncate(bare, 2<<20)
	theirs := filepath.Join(dir, "theirs")
	writeBBolt(t, theirs)
	v := mustVolume(t, Options{})
	for _, c := range []struct {
		path string
		want bool
	}{
		{write("empty", nil), true},
		{write("zeros", make([]byte, 4<<20)), true},
		{bare, true},
		{write("text", []byte("notes")), false},
		{write("zeros then text", append(make([]byte, 4096), "notes"...)), false},
		{theirs, false},
		{v.Path(), false},
		{filepath.Join(dir, "missing"), false},
	} {
		if got := Unfinished(c.path); got != c.want {
			t.Errorf("%s: unfinished %v, want %v", filepath.Base(c.path), got, c.want)
		}
	}
}

// TestRemoveAndSyncDir: Remove deletes, a file already gone is no error,
// and SyncDir fsyncs a directory.
func TestRemoveAndSyncDir(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	os.WriteFile(a, nil, 0o600)
	if err := Remove(a, b); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(a); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a: %v", err)
	}
	if err := durable.SyncDir(dir); err != nil {
		t.Fatal(err)
	}
	if err := durable.SyncDir(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a missing directory: %v", err)
	}
}

// writeEmptyBBolt makes a bbolt file with nothing in it: what bbolt
// alone writes when it makes a file.
func writeEmptyBBolt(t *testing.T, path string) {
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
}
