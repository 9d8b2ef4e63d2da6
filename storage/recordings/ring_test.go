package recordings

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/camd-project/camd/storage"
	"github.com/camd-project/camd/storage/volume"
)

// fileID is a file's inode number and size.
type fileID struct {
	ino  uint64
	size int64
}

// volumeFiles lists the volume files in dir with their inode numbers and
// sizes.
func volumeFiles(t testing.TB, dir string) map[string]fileID {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]fileID{}
	for _, e := range entries {
		if !ownName(e.Name()) {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = fileID{fi.Sys().(*syscall.Stat_t).Ino, fi.Size()}
	}
	return out
}

// TestVolumesAreReusedInPlace: once the volumes fill the quota, each new
// volume is made in the oldest one's file: the same files (same inodes,
// same sizes) hold the recordings from then on, so that the file system
// allocates and frees nothing and the directory does not change (on FAT,
// neither the allocation table nor the directory is written). The quota
// holds, the newest recordings are kept and read back.
func TestVolumesAreReusedInPlace(t *testing.T) {
	const quota, volSize = 4 << 20, 1 << 20
	e := newEnv(t, Options{Quota: Quota{Bytes: quota}, VolumeSize: volSize})
	rec := &source{Start: day, FrameBytes: 3000, Audio: true}
	var files map[string]fileID
	var last Fragment
	for range 30 {
		frags := rec.fragments(1, 10*time.Second)
		e.record(frags)
		last = frags[len(frags)-1]
		now := volumeFiles(t, e.opts.Dir)
		if files == nil && e.store.Stats().Deleted > 1 {
			// The second volume made in a reused file: the first is made
			// while the last new file still grows (prepareNext).
			files = now
		}
		if files != nil && !maps(files, now) {
			t.Fatalf("the files changed: %v, then %v", files, now)
		}
		if b := dirBytes(t, e.opts.Dir); b > quota {
			t.Fatalf("%d bytes on disk for a quota of %d", b, quota)
		}
	}
	st := e.store.Stats()
	if files == nil || len(files) != 4 || st.Deleted < 10 {
		t.Fatalf("%d files, stats %+v", len(files), st)
	}
	tl, _ := e.store.Timeline(1, day, last.Start.Add(time.Hour))
	if len(tl.Spans) != 1 || !tl.Spans[0].End.Equal(last.Start.Add(last.Duration)) || tl.Recorded < 20*time.Second {
		t.Fatalf("timeline: %+v", tl)
	}
	c, err := e.store.Clip(1, st.Oldest, last.Start.Add(last.Duration))
	if err != nil {
		t.Fatal(err)
	}
	checkClip(t, c)
	c.Close()

	// Reopened, the store goes on in the same files.
	e.close()
	e.open()
	e.record(rec.fragments(1, 30*time.Second))
	if now := volumeFiles(t, e.opts.Dir); !maps(files, now) {
		t.Fatalf("after a restart the files changed: %v, then %v", files, now)
	}
}

func maps(a, b map[string]fileID) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestInterruptedCreationIsCompleted: camd is cut off while it makes a
// volume. Whatever the file holds (a new file's clusters hold what a
// deleted file left in them; a reused one, the old volume torn), the
// catalog says it is being made: the next start makes it again and
// records in it, with no event, nothing moved aside. A record whose file
// never got its name is dropped.
func TestInterruptedCreationIsCompleted(t *testing.T) {
	for _, c := range []struct {
		name    string
		content []byte // nil: no file
	}{
		{"garbage", bytes.Repeat([]byte("stale "), 400_000)},
		{"empty", []byte{}},
		{"torn volume", nil},
		{"no file", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, Options{VolumeSize: 4 << 20})
			rec := &source{Start: day, FrameBytes: 3000}
			e.record(rec.fragments(1, 10*time.Second))
			e.close()
			path := filepath.Join(e.opts.Dir, volFile(2))
			switch {
			case c.content != nil:
				os.WriteFile(path, c.content, 0o600)
			case c.name == "torn volume":
				v, _ := volume.Create(path, 7, volume.Options{MaxSize: 4 << 20})
				v.Close()
				b, _ := os.ReadFile(path)
				clear(b[4096:]) // the first meta page is new, the rest is not
				os.WriteFile(path, b, 0o600)
			}
			putRecord(t, e, &vol{ID: 2, File: volFile(2), State: stateCreating})
			e.open()
			if k := e.eventKinds(); len(k) != 0 {
				t.Fatalf("events: %v", k)
			}
			e.record(rec.fragments(1, 5*time.Second))
			_, err := os.Stat(path)
			if got, want := err == nil, c.name != "no file"; got != want {
				t.Fatalf("volume 2's file exists: %v (%v)", got, err)
			}
			recs := records(t, e)
			want := []vol{{ID: 1, State: stateClosed}, {ID: 2, State: stateActive}}
			if c.name == "no file" {
				want = []vol{{ID: 1, State: stateActive}}
			}
			if !slices.EqualFunc(recs, want, func(a, b vol) bool { return a.ID == b.ID && a.State == b.State }) {
				t.Fatalf("records: %+v", recs)
			}
			if tl, _ := e.store.Timeline(1, day, day.Add(time.Hour)); len(tl.Spans) != 1 || tl.Recorded != 15*time.Second {
				t.Fatalf("timeline: %+v", tl)
			}
		})
	}
}

// putRecord writes a volume record in the catalog of a closed env.
func putRecord(t testing.TB, e *env, r *vol) {
	t.Helper()
	cat, err := storage.OpenCatalog(filepath.Join(e.dir, "catalog.db"), storage.CatalogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	s := &Store{cat: cat}
	if err := s.saveRecords([]*vol{r}, nil); err != nil {
		t.Fatal(err)
	}
}

// records returns the store's volume records.
func records(t testing.TB, e *env) []vol {
	t.Helper()
	e.store.mu.Lock()
	defer e.store.mu.Unlock()
	var out []vol
	for _, r := range e.store.vols {
		out = append(out, *r)
	}
	return out
}

// TestUnfinishedOrphansAreRemoved: files an interrupted creation left
// before the catalog listed them (by an older camd: its files grew to
// 4 MiB before their first pages reached the card) are removed at the
// next start, whatever their size, not moved aside as foreign.
func TestUnfinishedOrphansAreRemoved(t *testing.T) {
	e := newEnv(t, Options{VolumeSize: 1 << 20})
	rec := &source{Start: day, FrameBytes: 3000}
	e.record(rec.fragments(1, 5*time.Second))
	e.close()
	os.WriteFile(filepath.Join(e.opts.Dir, volFile(5)), make([]byte, 4<<20), 0o600)
	os.WriteFile(filepath.Join(e.opts.Dir, volFile(6)), nil, 0o600)
	e.open()
	if k := e.eventKinds(); len(k) != 0 {
		t.Fatalf("events: %v", k)
	}
	// The volume written and the next, made beforehand (prepareNext).
	if files := volumeFiles(t, e.opts.Dir); len(files) != 2 || files[volFile(1)].ino == 0 || files[volFile(2)].ino == 0 {
		t.Fatalf("files: %v", files)
	}
	e.record(rec.fragments(1, 10*time.Second))
	e.store.settled()
	files := volumeFiles(t, e.opts.Dir)
	for _, n := range []uint64{3, 4, 5, 6} {
		if files[volFile(n)].ino != 0 {
			t.Fatalf("the next volume reuses a number: %v", files)
		}
	}
	if files[volFile(7)].ino == 0 {
		t.Fatalf("no next volume: %v", files)
	}
}

// TestShortNamesAreCamds: on FAT a power cut can leave a new file with
// its short name alone (VOL-00~2.DB): the long name is written in the
// directory after it. A volume found so is listed under that name with
// its recordings, nothing reported lost; a short-named file holding no
// volume is an interrupted creation, removed; a factory reset erases
// what the store keeps under short names too.
func TestShortNamesAreCamds(t *testing.T) {
	e := newEnv(t, Options{VolumeSize: 1 << 20})
	rec := &source{Start: day, FrameBytes: 3000}
	e.record(rec.fragments(1, 30*time.Second))
	e.close()
	if err := os.Rename(filepath.Join(e.opts.Dir, volFile(2)), filepath.Join(e.opts.Dir, "VOL-00~2.DB")); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(e.opts.Dir, "VO1A2B~1.DB"), bytes.Repeat([]byte{7}, 100_000), 0o600)
	os.WriteFile(filepath.Join(e.opts.Dir, "VOTE.DB"), []byte("not ours"), 0o600)
	for _, name := range []string{"VOL-00~2.DB", "vo1a2b~1.db", "VO1A2B~1.DB"} {
		if !ownName(name) {
			t.Errorf("%s is not camd's", name)
		}
	}
	for _, name := range []string{"VOTE.DB", "VOL-00~2.DBX", "VOL-00~0.DB", "notes.txt"} {
		if ownName(name) {
			t.Errorf("%s is camd's", name)
		}
	}
	e.open()
	if k := e.eventKinds(); len(k) != 0 {
		t.Fatalf("events: %v", k)
	}
	tl, _ := e.store.Timeline(1, day, day.Add(time.Hour))
	if len(tl.Spans) != 1 || tl.Recorded != 30*time.Second {
		t.Fatalf("timeline: %+v", tl)
	}
	if !slices.ContainsFunc(records(t, e), func(r vol) bool { return r.ID == 2 && r.File == "VOL-00~2.DB" }) {
		t.Fatalf("records: %+v", records(t, e))
	}
	if _, err := os.Stat(filepath.Join(e.opts.Dir, "VO1A2B~1.DB")); err == nil {
		t.Fatal("an unfinished volume under a short name was left")
	}
	var kept []string
	for _, pat := range Files(e.opts.Dir) {
		m, _ := filepath.Glob(pat)
		kept = append(kept, m...)
	}
	if !slices.Contains(kept, filepath.Join(e.opts.Dir, "VOL-00~2.DB")) || slices.Contains(kept, filepath.Join(e.opts.Dir, "VOTE.DB")) {
		t.Fatalf("Files: %v", kept)
	}
}
