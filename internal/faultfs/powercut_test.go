package faultfs

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// TestDiskKeepsWhatWasFlushed: the model of a card whose power can be cut
// keeps a file's data once the file is fsynced and a name once its
// directory is, and nothing else.
func TestDiskKeepsWhatWasFlushed(t *testing.T) {
	d, err := loadDisk(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	old := d.create("old")
	old.write(0, []byte("durable"))
	old.fsync()
	d.fsyncDir("")

	// A file whose name is durable but whose data is not: empty.
	b := d.create("b")
	d.fsyncDir("")
	b.write(0, []byte("bbbb"))
	// A new file, fsynced but its directory not: gone after a cut.
	a := d.create("a")
	a.write(0, []byte("aaaa"))
	a.fsync()
	// Data written after the last fsync of a durable file is lost, and
	// so is a size change; its rename and removal too.
	old.write(0, []byte("DURABLE and more"))
	old.truncate(3)
	d.rename("old", "renamed")
	d.mkdir("sub")
	d.create("sub/c").fsync()
	d.fsyncDir("sub") // but "sub" itself is not durable in the root

	tree := d.cut(nil)
	want := map[string][]byte{"old": []byte("durable"), "a": nil, "b": {}}
	for name, data := range want {
		got, ok := tree[""][name]
		if data == nil {
			if ok {
				t.Errorf("%s survived the cut", name)
			}
			continue
		}
		if !ok || !bytes.Equal(got, data) {
			t.Errorf("%s: %q (present %v), want %q", name, got, ok, data)
		}
	}
	if len(tree[""]) != 2 {
		t.Errorf("root after the cut: %v", tree[""])
	}
	if d.gate() == nil {
		t.Error("an operation went through after the cut")
	}
}

// TestDiskRenameIsDurableWithItsDirectory: a file keeps its data under
// its new name once the directory is fsynced, whichever name it had
// when it was fsynced; across directories, each one counts for itself.
func TestDiskRenameIsDurableWithItsDirectory(t *testing.T) {
	d, _ := loadDisk(t.TempDir())
	d.mkdir("x")
	d.mkdir("y")
	d.fsyncDir("")
	f := d.create("x/tmp")
	f.write(0, []byte("header"))
	d.fsyncDir("x")
	d.rename("x/tmp", "x/final")
	f.fsync()
	d.fsyncDir("x")
	d.rename("x/final", "y/moved")
	d.fsyncDir("y") // x not fsynced: the file is in both
	tree := d.cut(nil)
	if got := tree["x"]["final"]; string(got) != "header" {
		t.Errorf("x/final: %q", got)
	}
	if got := tree["y"]["moved"]; string(got) != "header" {
		t.Errorf("y/moved: %q", got)
	}
	if _, ok := tree["x"]["tmp"]; ok {
		t.Error("x/tmp survived its rename")
	}
}

// TestDiskCutPartly: a partial cut keeps, of what was not durable, some
// writes and sectors of writes, never more than was written, and each
// directory as it was durably or as it is.
func TestDiskCutPartly(t *testing.T) {
	kept, lost := 0, 0
	for seed := range uint64(64) {
		d, _ := loadDisk(t.TempDir())
		f := d.create("f")
		f.write(0, bytes.Repeat([]byte{1}, 4096))
		f.fsync()
		d.fsyncDir("")
		f.write(0, bytes.Repeat([]byte{2}, 4096))
		d.create("g")
		tree := d.cut(rand.New(rand.NewPCG(seed, seed)))
		got := tree[""]["f"]
		if len(got) != 4096 {
			t.Fatalf("seed %d: %d bytes", seed, len(got))
		}
		for s := 0; s < 4096; s += 512 {
			switch sector := got[s : s+512]; {
			case bytes.Equal(sector, bytes.Repeat([]byte{2}, 512)):
				kept++
			case bytes.Equal(sector, bytes.Repeat([]byte{1}, 512)):
				lost++
			default:
				t.Fatalf("seed %d: sector at %d is torn inside: %v", seed, s, sector[:8])
			}
		}
	}
	if kept == 0 || lost == 0 {
		t.Fatalf("%d sectors kept, %d lost: not partly", kept, lost)
	}
}

// TestPowerCut cuts the power of a mounted card: what was fsynced, with
// its name, is there after it, nothing else; operations fail in
// between; CutAfter fails the n-th operation.
func TestPowerCut(t *testing.T) {
	card := MountTempWith(t, Options{PowerCut: true})
	dir := card.Dir
	write := func(name, data string, syncFile, syncDir bool) {
		t.Helper()
		f, err := os.OpenFile(filepath.Join(dir, name), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString(data); err != nil {
			t.Fatal(err)
		}
		if syncFile {
			if err := f.Sync(); err != nil {
				t.Fatal(err)
			}
		}
		f.Close()
		if syncDir {
			d, err := os.Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			if err := d.Sync(); err != nil {
				t.Fatal(err)
			}
			d.Close()
		}
	}
	write("kept", "kept", true, true)
	write("empty", "y", false, true)
	write("nameless", "x", true, false)
	if err := os.Rename(filepath.Join(dir, "kept"), filepath.Join(dir, "moved")); err != nil {
		t.Fatal(err)
	}
	n0, _, err := card.Operations()
	if err != nil || n0 == 0 {
		t.Fatalf("%d operations, %v", n0, err)
	}
	if err := card.CutAfter(2); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "empty"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("z"); err != nil {
		t.Fatalf("the first operation after arming: %v", err)
	}
	if err := f.Sync(); err == nil {
		t.Fatal("the second operation after arming went through")
	}
	f.Close()
	if _, off, _ := card.Operations(); !off {
		t.Fatal("the power is on after the cut")
	}
	if err := os.WriteFile(filepath.Join(dir, "after"), nil, 0o600); err == nil {
		t.Fatal("a file was created after the cut")
	}
	if err := card.Cut(); err != nil {
		t.Fatal(err)
	}
	card, err = card.PowerUp()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { card.Unmount() })
	entries, _ := os.ReadDir(card.Dir)
	got := map[string]string{}
	for _, e := range entries {
		b, _ := os.ReadFile(filepath.Join(card.Dir, e.Name()))
		got[e.Name()] = string(b)
	}
	if len(got) != 2 || got["kept"] != "kept" || got["empty"] != "" {
		t.Fatalf("after the cut: %q, want kept (its rename not durable) and an empty file", got)
	}
	// The power is back: changes are made durable again.
	write("new", "new", true, true)
	if err := card.Cut(); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(card.Backing, "new")); err != nil || string(b) != "new" {
		t.Fatalf("after the power came back: %q, %v", b, err)
	}
}
