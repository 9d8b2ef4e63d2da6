package volume

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"go.etcd.io/bbolt"

	"github.com/camd-project/camd/internal/faultfs"
)

// The tests in this file put volumes on a card whose reads fail: a FUSE
// file system (package faultfs) that returns EIO on demand. bbolt reads a
// volume through a memory mapping, where such a read is a fault
// (SIGBUS), not an error.

// TestFaultFSServer is the FUSE server that faultfs runs in a child
// process.
func TestFaultFSServer(t *testing.T) { faultfs.Serve(t) }

// readFault makes reads of the 4 KiB page at off of the file at path (on
// card) fail.
func readFault(t *testing.T, card *faultfs.FS, path string, off int64) {
	t.Helper()
	err := card.Set(faultfs.Fault{Ops: faultfs.Read, Err: syscall.EIO, Files: filepath.Base(path), Offset: off &^ 4095, Length: 4096})
	if err != nil {
		t.Fatal(err)
	}
}

// backing opens the file behind path on card read-only with bbolt, past
// the faults.
func backing(t *testing.T, card *faultfs.FS, path string, fn func(db *bbolt.DB, tx *bbolt.Tx) error) {
	t.Helper()
	rel, _ := filepath.Rel(card.Dir, path)
	db, err := bbolt.Open(filepath.Join(card.Backing, rel), 0o600, &bbolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.View(func(tx *bbolt.Tx) error { return fn(db, tx) }); err != nil {
		t.Fatal(err)
	}
}

// mapped reports whether this process maps the file at path.
func mapped(t *testing.T, path string) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasSuffix(l, " "+path) {
			return true
		}
	}
	return false
}

// closes closes v, failing the test if that does not return.
func closes(t *testing.T, v *Volume) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- v.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("close hangs")
	}
}

// TestCreateOnACardWhoseReadsFail: bbolt reads the header of a new volume
// back and calls what it cannot read "invalid": that is the card failing,
// not a file that is not a volume.
func TestCreateOnACardWhoseReadsFail(t *testing.T) {
	card := faultfs.MountTemp(t)
	if err := card.Set(faultfs.Fault{Ops: faultfs.Read, Err: syscall.EIO}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(card.Dir, "vol-1.db")
	v, err := Create(path, 1, Options{MaxSize: 1 << 20})
	if err == nil {
		v.Close()
		t.Fatal("created a volume on a card that cannot read it back")
	}
	if !errors.Is(err, syscall.EIO) || errors.Is(err, ErrNotVolume) || errors.Is(err, ErrDamaged) {
		t.Fatalf("create: %v, want an I/O error", err)
	}
	if card.Hits(faultfs.Read) == 0 {
		t.Fatal("no read failed")
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the failed volume was left behind: %v", err)
	}
}

// TestUnreadablePageOfAFragment: a page inside a fragment's data cannot
// be read. Reading that fragment fails with an I/O error (not a crash,
// not damage); the rest of the volume stays readable through the same
// handle.
func TestUnreadablePageOfAFragment(t *testing.T) {
	card := faultfs.MountTemp(t)
	path := filepath.Join(card.Dir, "vol-1.db")
	v, err := Create(path, 1, Options{MaxSize: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 8 {
		if err := v.Append(frag(1, i), data(50_000, byte(i)), []byte("init")); err != nil {
			t.Fatal(err)
		}
	}
	v.Close()
	var page int64
	backing(t, card, path, func(db *bbolt.DB, tx *bbolt.Tx) error {
		d := tx.Bucket(bucketFrags).Bucket(frag(1, 3).Key.Bytes()).Get(keyData)
		page = int64(uintptr(unsafe.Pointer(&d[0]))-db.Info().Data) + int64(len(d)/2)
		return nil
	})
	r, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	readFault(t, card, path, page)
	if _, err := r.Read(frag(1, 3).Key, nil); !errors.Is(err, syscall.EIO) || errors.Is(err, ErrDamaged) {
		t.Fatalf("read over the bad page: %v, want an I/O error", err)
	}
	if card.Hits(faultfs.Read) == 0 {
		t.Fatal("no read failed")
	}
	for _, i := range []int{2, 4, 7} {
		if b, err := r.Read(frag(1, i).Key, nil); err != nil || !bytes.Equal(b, data(50_000, byte(i))) {
			t.Fatalf("fragment %d after the bad page: %v", i, err)
		}
	}
	closes(t, r)
	if err := card.Heal(); err != nil {
		t.Fatal(err)
	}
	if err := Check(path, Options{}); err != nil {
		t.Fatal(err)
	}
}

// TestUnreadablePageUnderAnAppend: the transaction of an append reads a
// page that the card cannot serve. The append fails with an I/O error,
// and the handle, which bbolt may have left locked, is given up: it fails
// from then on without touching bbolt, closes without waiting for
// bbolt's locks, lets go of the file's lock, so that the volume can be
// opened again once the card reads, and of its mapping (a volume's size
// of address space, which bbolt would never unmap).
func TestUnreadablePageUnderAnAppend(t *testing.T) {
	card := faultfs.MountTemp(t)
	path := filepath.Join(card.Dir, "vol-1.db")
	v, err := Create(path, 1, Options{MaxSize: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	// Init segments large enough to give the inits bucket pages of its
	// own (a small bucket lives inline in its parent's page).
	initOf := func(i int) []byte { return bytes.Repeat([]byte{byte(i)}, 700) }
	for i := range 6 {
		if err := v.Append(frag(1, i), data(5000, byte(i)), initOf(i)); err != nil {
			t.Fatal(err)
		}
	}
	v.Close()
	var root int64
	backing(t, card, path, func(_ *bbolt.DB, tx *bbolt.Tx) error {
		root = int64(tx.Bucket(bucketInits).Root())
		return nil
	})
	if root == 0 {
		t.Fatal("the inits bucket is inline")
	}
	// Opening reads the inits bucket's page with plain reads only and
	// drops it from the page cache: the append reads it through the
	// mapping.
	w, err := Open(path, Options{MaxSize: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	readFault(t, card, path, root*4096)
	err = w.Append(frag(1, 6), data(5000, 6), initOf(6))
	if !errors.Is(err, syscall.EIO) || errors.Is(err, ErrDamaged) {
		t.Fatalf("append over the bad page: %v, want an I/O error", err)
	}
	if card.Hits(faultfs.Read) == 0 {
		t.Fatal("no read failed")
	}
	if err := card.Heal(); err != nil {
		t.Fatal(err)
	}
	if err := w.Append(frag(1, 7), data(5000, 7), nil); !errors.Is(err, syscall.EIO) {
		t.Fatalf("append to the handle given up: %v", err)
	}
	if _, err := w.Read(frag(1, 0).Key, nil); !errors.Is(err, syscall.EIO) {
		t.Fatalf("read of the handle given up: %v", err)
	}
	if !mapped(t, path) {
		t.Fatal("the volume is not mapped: the test cannot tell whether Close unmaps it")
	}
	closes(t, w)
	closes(t, w)
	if mapped(t, path) {
		t.Fatal("the handle given up still maps the volume")
	}

	w, err = Open(path, Options{MaxSize: 4 << 20, LockTimeout: time.Second})
	if err != nil {
		t.Fatalf("open again: %v", err)
	}
	if err := w.Append(frag(1, 6), data(5000, 6), initOf(6)); err != nil {
		t.Fatal(err)
	}
	if b, err := w.Read(frag(1, 6).Key, nil); err != nil || !bytes.Equal(b, data(5000, 6)) {
		t.Fatalf("read back: %v", err)
	}
	closes(t, w)
	if err := Check(path, Options{}); err != nil {
		t.Fatal(err)
	}
}

// TestGrowingCostsNoFsyncOfItsOwn: appends that grow the file cost the
// two fdatasyncs of their commits and nothing more, and a power cut right
// after them keeps every fragment: the commit's fdatasync makes the new
// size durable with the pages in it.
func TestGrowingCostsNoFsyncOfItsOwn(t *testing.T) {
	card := faultfs.MountTempWith(t, faultfs.Options{PowerCut: true})
	path := filepath.Join(card.Dir, "vol-1.db")
	v, err := Create(path, 1, Options{MaxSize: 8 << 20}) // grows by 1 MiB
	if err != nil {
		t.Fatal(err)
	}
	start := v.Size()
	// Counts fsyncs, failing none.
	if err := card.Set(faultfs.Fault{Ops: faultfs.Fsync}); err != nil {
		t.Fatal(err)
	}
	const n = 20
	for i := range n {
		if err := v.Append(frag(1, i), data(200_000, byte(i)), []byte("init")); err != nil {
			t.Fatal(err)
		}
	}
	grown := v.Size()
	if grown < start+3<<20 {
		t.Fatalf("the file grew from %d to %d bytes: too few steps to tell", start, grown)
	}
	if got := card.Hits(faultfs.Fsync); got != 2*n {
		t.Errorf("%d appends that grew the file %d bytes made %d fsyncs, want %d (two per commit)", n, grown-start, got, 2*n)
	}
	if err := card.Cut(); err != nil {
		t.Fatal(err)
	}
	v.Close()
	if card, err = card.PowerUp(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { card.Unmount() })
	if err := Check(path, Options{}); err != nil {
		t.Fatal(err)
	}
	r, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer closes(t, r)
	for i := range n {
		if b, err := r.Read(frag(1, i).Key, nil); err != nil || !bytes.Equal(b, data(200_000, byte(i))) {
			t.Fatalf("fragment %d after the cut: %v", i, err)
		}
	}
}

// TestNamedReuseSyncsTheFileAlone: Reuse of a file whose name is durable
// (Options.Named) and that keeps its size fsyncs the file and not its
// directory; a file that must grow, or one not said to be named (what a
// cut creation left), has its directory fsynced too. The FUSE card
// counts the fsyncs of the directory.
func TestNamedReuseSyncsTheFileAlone(t *testing.T) {
	card := faultfs.MountTemp(t)
	dir := filepath.Join(card.Dir, "rec")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	full := filepath.Join(dir, "vol-1.db")
	v, err := Create(full, 1, Options{MaxSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; ; n++ {
		err := v.Append(frag(1, n), data(20_000, byte(n)), nil)
		if errors.Is(err, ErrFull) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	v.Close()
	small := filepath.Join(dir, "vol-2.db")
	if err := os.WriteFile(small, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// Counted, not failed.
	if err := card.Set(faultfs.Fault{Ops: faultfs.Fsync, Files: "rec"}); err != nil {
		t.Fatal(err)
	}
	for i, c := range []struct {
		path  string
		named bool
		syncs uint64 // of the directory
	}{
		{full, true, 0},
		{full, false, 1},
		{small, true, 1}, // grows
	} {
		before := card.Hits(faultfs.Fsync)
		v, err := Reuse(c.path, uint64(10+i), Options{MaxSize: 1 << 20, Named: c.named})
		if err != nil {
			t.Fatal(err)
		}
		if err := v.Append(frag(1, 0), data(1000, 1), nil); err != nil {
			t.Fatal(err)
		}
		v.Close()
		// The append's commit fsyncs the file, not the directory.
		if n := card.Hits(faultfs.Fsync) - before; n != c.syncs {
			t.Errorf("reuse of %s, named %v: %d fsyncs of the directory, want %d", filepath.Base(c.path), c.named, n, c.syncs)
		}
		if err := Check(c.path, Options{}); err != nil {
			t.Fatal(err)
		}
	}
}
