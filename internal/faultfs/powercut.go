package faultfs

import (
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
)

// disk is the state of a card whose power can be cut (Options.PowerCut):
// what its files and directories hold now, and what of it is durable,
// that is, what a power cut leaves. It follows what POSIX promises and
// no more:
//
//   - A file's data and size are durable once an fsync or fdatasync of
//     the file returns; until then, writes and size changes since the
//     last one are not.
//   - A directory's entries (files and directories created, renamed or
//     removed in it) are durable once an fsync of the directory returns;
//     until then the directory holds, after a cut, what it held at the
//     last one. A file whose name is not durable is gone after a cut,
//     whatever was fsynced of its data; a rename is durable in each of
//     the two directories once that one is fsynced.
//
// The file system passes every operation through to its backing
// directory as a loopback does, and records here what it did. A cut
// fails every operation from then on (the power is off) and writes the
// durable state into the backing directory, for a mount after it (the
// power back).
//
// Files are held by identity, not name, as inodes are: a file renamed
// after its fsync keeps its data under either name.
type disk struct {
	mu    sync.Mutex
	files map[string]*inode // current names, relative to the root
	dirs  map[string]bool   // current directories ("" is the root)
	// durable lists each directory's entries as of its last fsync: a
	// file, or nil for a directory.
	durable map[string]map[string]*inode
	ops     int  // operations that change something, so far
	cutAt   int  // the power fails at this operation (0: never)
	off     bool // the power is off
}

// inode is a file: its durable data, and what was done to it since.
type inode struct {
	data    []byte  // as of the last fsync
	pending []write // writes and size changes since, in order
}

// write is a write, or a change of size to off when data is nil.
type write struct {
	off  int64
	data []byte
}

var errOff = syscall.EIO

// loadDisk makes a disk of what the directory root holds, all of it
// durable (a card whose power just came back).
func loadDisk(root string) (*disk, error) {
	d := &disk{files: map[string]*inode{}, dirs: map[string]bool{"": true}, durable: map[string]map[string]*inode{"": {}}}
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		parent, name := split(rel)
		switch {
		case e.IsDir():
			d.dirs[rel] = true
			d.durable[rel] = map[string]*inode{}
			d.durable[parent][name] = nil
		case e.Type().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			ino := &inode{data: b}
			d.files[rel] = ino
			d.durable[parent][name] = ino
		}
		return nil
	})
	return d, err
}

// split returns the directory and the name of a relative path.
func split(rel string) (dir, name string) {
	dir, name = path.Split(rel)
	return strings.TrimSuffix(dir, "/"), name
}

// gate admits an operation that changes something, or fails it with
// EIO when the power is off or fails now. The caller holds d.mu.
func (d *disk) gate() error {
	if d.off {
		return errOff
	}
	if d.cutAt > 0 && d.ops+1 >= d.cutAt {
		d.off = true
		return errOff
	}
	d.ops++
	return nil
}

// file returns the file at rel, one the backing directory holds though
// it was made behind the file system's back (durable as it is) if need
// be, or nil.
func (d *disk) file(rel, backing string) *inode {
	if ino := d.files[rel]; ino != nil {
		return ino
	}
	b, err := os.ReadFile(filepath.Join(backing, filepath.FromSlash(rel)))
	if err != nil {
		return nil
	}
	ino := &inode{data: b}
	d.files[rel] = ino
	return ino
}

func (d *disk) create(rel string) *inode {
	ino := d.files[rel]
	if ino == nil {
		ino = &inode{}
		d.files[rel] = ino
	}
	return ino
}

func (ino *inode) write(off int64, data []byte) {
	ino.pending = append(ino.pending, write{off: off, data: slices.Clone(data)})
}

func (ino *inode) truncate(size int64) {
	ino.pending = append(ino.pending, write{off: size})
}

// fsync makes the file's data and size durable.
func (ino *inode) fsync() {
	for _, w := range ino.pending {
		ino.data = w.apply(ino.data)
	}
	ino.pending = nil
}

// apply returns data with the write done.
func (w write) apply(data []byte) []byte {
	if w.data == nil {
		if w.off <= int64(len(data)) {
			return data[:w.off]
		}
		return append(data, make([]byte, w.off-int64(len(data)))...)
	}
	if end := w.off + int64(len(w.data)); end > int64(len(data)) {
		data = append(data, make([]byte, end-int64(len(data)))...)
	}
	copy(data[w.off:], w.data)
	return data
}

func (d *disk) mkdir(rel string) { d.dirs[rel] = true }

func (d *disk) unlink(rel string) { delete(d.files, rel) }

func (d *disk) rmdir(rel string) { delete(d.dirs, rel) }

// rename moves a file or a directory and all it holds.
func (d *disk) rename(from, to string) {
	if ino := d.files[from]; ino != nil {
		delete(d.files, from)
		d.files[to] = ino
		return
	}
	if !d.dirs[from] {
		return
	}
	moved := func(p string) (string, bool) {
		if p == from {
			return to, true
		}
		if rest, ok := strings.CutPrefix(p, from+"/"); ok {
			return to + "/" + rest, true
		}
		return "", false
	}
	for p, ino := range d.files {
		if q, ok := moved(p); ok {
			delete(d.files, p)
			d.files[q] = ino
		}
	}
	for p := range d.dirs {
		if q, ok := moved(p); ok {
			delete(d.dirs, p)
			d.dirs[q] = true
		}
	}
}

// entries lists the directory's entries now.
func (d *disk) entries(dir string) map[string]*inode {
	out := map[string]*inode{}
	for p, ino := range d.files {
		if parent, name := split(p); parent == dir && p != "" {
			out[name] = ino
		}
	}
	for p := range d.dirs {
		if parent, name := split(p); parent == dir && p != "" {
			out[name] = nil
		}
	}
	return out
}

// fsyncDir makes the directory's entries durable.
func (d *disk) fsyncDir(dir string) { d.durable[dir] = d.entries(dir) }

// settle makes everything durable, as sync(2) does.
func (d *disk) settle() {
	for _, ino := range d.files {
		ino.fsync()
	}
	d.durable = map[string]map[string]*inode{}
	for dir := range d.dirs {
		d.fsyncDir(dir)
	}
}

// cut turns the power off and returns what the card holds after it, as
// a tree of directories from the root: each directory's entries (a
// file's data; nil for a directory). With rng, the card also wrote some
// of what was not durable on its own before the cut: each write or size
// change since a file's last fsync is kept or lost (a write partly: 512-
// byte sectors of it are kept or lost one by one), and a directory holds
// either its durable entries or its current ones.
func (d *disk) cut(rng *rand.Rand) map[string]map[string][]byte {
	d.off = true
	data := map[*inode][]byte{}
	content := func(ino *inode) []byte {
		if b, ok := data[ino]; ok {
			return b
		}
		b := slices.Clone(ino.data)
		if rng != nil {
			for _, w := range ino.pending {
				if w.data == nil || rng.IntN(4) == 0 {
					if rng.IntN(2) == 0 {
						b = w.apply(b)
					}
					continue
				}
				// Torn: sector by sector.
				for s := int64(0); s < int64(len(w.data)); s += 512 {
					if rng.IntN(2) == 0 {
						end := min(s+512, int64(len(w.data)))
						b = write{off: w.off + s, data: w.data[s:end]}.apply(b)
					}
				}
			}
		}
		data[ino] = b
		return b
	}
	tree := map[string]map[string][]byte{}
	var walk func(dir string)
	walk = func(dir string) {
		ents := d.durable[dir]
		if rng != nil && d.dirs[dir] && rng.IntN(2) == 0 {
			ents = d.entries(dir)
		}
		out := map[string][]byte{}
		tree[dir] = out
		for name, ino := range ents {
			sub := path.Join(dir, name)
			if ino == nil {
				out[name] = nil
				walk(sub)
				continue
			}
			out[name] = content(ino)
			if out[name] == nil {
				out[name] = []byte{}
			}
		}
	}
	walk("")
	return tree
}

// restore makes the directory root hold tree (from cut) and nothing else.
func restore(root string, tree map[string]map[string][]byte) error {
	entries, err := os.ReadDir(root)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(root, e.Name())); err != nil {
			return err
		}
	}
	var errs []error
	var fill func(dir string)
	fill = func(dir string) {
		for name, b := range tree[dir] {
			p := filepath.Join(root, filepath.FromSlash(path.Join(dir, name)))
			if b == nil {
				errs = append(errs, os.Mkdir(p, 0o700))
				fill(path.Join(dir, name))
				continue
			}
			errs = append(errs, os.WriteFile(p, b, 0o600))
		}
	}
	fill("")
	return errors.Join(errs...)
}
