package recordings

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/camd-project/camd/internal/testenv"
	"github.com/camd-project/camd/storage"
	"github.com/camd-project/camd/storage/volume"
)

// env is a store on a catalog in a temporary directory, with its events.
type env struct {
	t      testing.TB
	dir    string
	cat    *storage.Catalog
	store  *Store
	opts   Options
	mu     sync.Mutex
	events []Event
	// notified has a value after an event (waitEvent).
	notified chan struct{}
}

func newEnv(t testing.TB, opts Options) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir(), opts: opts, notified: make(chan struct{}, 1)}
	e.open()
	t.Cleanup(func() { e.close() })
	return e
}

func (e *env) open() {
	e.t.Helper()
	cat, err := storage.OpenCatalog(filepath.Join(e.dir, "catalog.db"), storage.CatalogOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	e.cat = cat
	o := e.opts
	if o.Dir == "" {
		o.Dir = filepath.Join(e.dir, "recordings")
	}
	o.Notify = func(ev Event) {
		e.mu.Lock()
		e.events = append(e.events, ev)
		e.mu.Unlock()
		select {
		case e.notified <- struct{}{}:
		default:
		}
	}
	e.opts.Dir = o.Dir
	s, err := Open(cat, o)
	if err != nil {
		e.t.Fatal(err)
	}
	e.store = s
}

// close closes the store and checks every volume's consistency.
func (e *env) close() {
	if e.store == nil {
		return
	}
	e.store.Close()
	e.cat.Close()
	e.store = nil
	files, _ := filepath.Glob(filepath.Join(e.opts.Dir, "vol-*.db"))
	for _, f := range files {
		if err := volume.Check(f, volume.Options{}); err != nil && !strings.Contains(f, "damaged") {
			e.t.Errorf("after close: %v", err)
		}
	}
}

// crash reopens as after a kill -9: the files are copied as they are
// while open (what the page cache holds after each commit is what a
// killed process leaves) and the store is opened on the copies.
func (e *env) crash() {
	e.t.Helper()
	copyDir := e.t.TempDir()
	copyTree(e.t, e.dir, copyDir)
	e.store.Close()
	e.cat.Close()
	os.RemoveAll(e.dir)
	copyTree(e.t, copyDir, e.dir)
	e.store = nil
	e.open()
}

func copyTree(t testing.TB, from, to string) {
	filepath.Walk(from, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if fi.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o700)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o600)
	})
}

func (e *env) eventKinds() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var k []string
	for _, ev := range e.events {
		k = append(k, ev.Kind)
	}
	return k
}

// eventsOf returns the events of a kind.
func (e *env) eventsOf(kind string) []Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Event
	for _, ev := range e.events {
		if ev.Kind == kind {
			out = append(out, ev)
		}
	}
	return out
}

func (e *env) hasEvent(kind string) bool {
	for _, k := range e.eventKinds() {
		if k == kind {
			return true
		}
	}
	return false
}

// source makes a stream's fragments as the recorder hands them to the
// store: one a second, of 30 pictures of FrameBytes (800 by default; a
// keyframe's four times as large) and, with Audio, 50 audio packets.
// Every KeyEvery-th fragment (default every one) starts with a keyframe.
// The store keeps bytes: the fragments' are fragmentData, which a test
// can check on the way back.
type source struct {
	Start      time.Time
	FrameBytes int
	Audio      bool
	KeyEvery   int

	n int // fragments made or skipped
}

// fragments returns the fragments of the next d (whole seconds).
func (s *source) fragments(stream uint32, d time.Duration) []Fragment {
	if s.FrameBytes == 0 {
		s.FrameBytes = 800
	}
	if s.KeyEvery == 0 {
		s.KeyEvery = 1
	}
	var out []Fragment
	for range d / time.Second {
		start := s.Start.Add(time.Duration(s.n) * time.Second)
		key := s.n%s.KeyEvery == 0
		size := 30*s.FrameBytes + 100
		if key {
			size += 3 * s.FrameBytes
		}
		if s.Audio {
			size += 50 * 20
		}
		out = append(out, Fragment{Stream: stream, Start: start, Duration: time.Second, Key: key, Audio: s.Audio,
			Init: initData(stream, s.Audio), Data: fragmentData(stream, start, size)})
		s.n++
	}
	return out
}

// skip lets d (whole seconds) go by unrecorded.
func (s *source) skip(d time.Duration) { s.n += int(d / time.Second) }

// initData is the init segment of a stream's fragments, as large as a
// real one (about 700 bytes).
func initData(stream uint32, audio bool) []byte {
	b := fmt.Appendf(nil, "init of stream %d, audio %v;", stream, audio)
	return append(b, bytes.Repeat([]byte{'.'}, 700-len(b))...)
}

// fragmentData is the bytes of the fragment of stream at start.
func fragmentData(stream uint32, start time.Time, size int) []byte {
	b := make([]byte, size)
	seed := byte(start.UnixMilli()/100) + byte(stream)*31
	for i := range b {
		b[i] = seed + byte(i*7)
	}
	return b
}

// checkClip reads every part of c and checks its bytes are what was
// recorded, that parts follow each other in time and that the clip lasts
// as long as it says; it returns the bytes read.
func checkClip(t testing.TB, c *Clip) int {
	t.Helper()
	n := 0
	var buf []byte
	for i, p := range c.Parts() {
		b, err := c.Read(i, buf[:0])
		if err != nil {
			t.Fatalf("part %d: %v", i, err)
		}
		if !bytes.Equal(b, fragmentData(c.Stream, p.Start, p.Size)) {
			t.Fatalf("part %d (%v) is not what was recorded", i, p.Start)
		}
		if i > 0 && p.Start.Before(c.Parts()[i-1].End()) {
			t.Fatalf("part %d starts at %v, before the end of the one before", i, p.Start)
		}
		if p.Init == nil {
			t.Fatalf("part %d has no init segment", i)
		}
		n += len(b)
		buf = b
	}
	parts := c.Parts()
	if len(parts) == 0 || !parts[0].Key || !parts[0].Start.Equal(c.Start) || !parts[len(parts)-1].End().Equal(c.End) {
		t.Fatalf("clip %v to %v: %d parts", c.Start, c.End, len(parts))
	}
	return n
}

func (e *env) record(frags []Fragment) {
	e.t.Helper()
	for _, f := range frags {
		if err := e.store.Append(f); err != nil {
			e.t.Fatalf("Append %v: %v", f.Start, err)
		}
	}
}

var day = time.Date(2025, 6, 1, 8, 0, 0, 0, time.UTC)

func TestTimelineAndClip(t *testing.T) {
	e := newEnv(t, Options{})
	rec := &source{Audio: true, Start: day, FrameBytes: 2000}
	e.record(rec.fragments(1, 60*time.Second))
	rec.skip(30 * time.Second) // not recorded
	e.record(rec.fragments(1, 60*time.Second))

	tl, err := e.store.Timeline(1, day.Add(-time.Minute), day.Add(3*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(tl.Spans) != 2 || len(tl.Gaps) != 3 {
		t.Fatalf("timeline: %d spans %d gaps: %+v", len(tl.Spans), len(tl.Gaps), tl)
	}
	if !tl.Spans[0].Start.Equal(day) || tl.Spans[0].End.Sub(day) < 59*time.Second {
		t.Errorf("first span %v..%v", tl.Spans[0].Start, tl.Spans[0].End)
	}
	if g := tl.Gaps[1]; g.End.Sub(g.Start) < 29*time.Second || g.End.Sub(g.Start) > 32*time.Second {
		t.Errorf("gap in the middle: %v", g.End.Sub(g.Start))
	}
	if tl.Recorded < 118*time.Second {
		t.Errorf("recorded %v", tl.Recorded)
	}
	// Clipped to the range.
	tl, _ = e.store.Timeline(1, day.Add(10*time.Second), day.Add(20*time.Second))
	if len(tl.Spans) != 1 || !tl.Spans[0].Start.Equal(day.Add(10*time.Second)) || len(tl.Gaps) != 0 {
		t.Errorf("clipped timeline: %+v", tl)
	}

	from := day.Add(10*time.Second + 300*time.Millisecond)
	c, err := e.store.Clip(1, from, day.Add(20*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if d := from.Sub(c.Start); d < 0 || d >= time.Second {
		t.Errorf("clip starts %v before the range", d)
	}
	if !c.End.Equal(day.Add(20*time.Second)) || len(c.Parts()) != 10 {
		t.Errorf("clip %v to %v, %d parts", c.Start.Sub(day), c.End.Sub(day), len(c.Parts()))
	}
	checkClip(t, c)

	// Parts read in any order are the same bytes.
	for _, i := range []int{7, 0, 9, 3} {
		p := c.Parts()[i]
		if b, err := c.Read(i, []byte("kept")); err != nil || !bytes.Equal(b, append([]byte("kept"), fragmentData(1, p.Start, p.Size)...)) {
			t.Errorf("part %d read out of order: %v", i, err)
		}
	}
	if _, err := c.Read(10, nil); err == nil {
		t.Error("read past the last part")
	}
	c.Close()
	if _, err := c.Read(0, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("read of a closed clip: %v", err)
	}
}

func TestBadRanges(t *testing.T) {
	e := newEnv(t, Options{MaxExport: time.Minute})
	rec := &source{Audio: true, Start: day}
	e.record(rec.fragments(1, 90*time.Second))
	for _, c := range []struct {
		name     string
		from, to time.Time
		want     error
	}{
		{"empty", day, day, ErrRange},
		{"reversed", day.Add(time.Minute), day, ErrRange},
		{"before 1970", time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(1950, 1, 1, 0, 0, 0, 0, time.UTC), ErrRange},
	} {
		if _, err := e.store.Timeline(1, c.from, c.to); !errors.Is(err, c.want) {
			t.Errorf("%s: Timeline: %v", c.name, err)
		}
		if _, err := e.store.Clip(1, c.from, c.to); !errors.Is(err, c.want) {
			t.Errorf("%s: Clip: %v", c.name, err)
		}
	}
	// Years wide: the timeline is what there is; the export is too long.
	years := [2]time.Time{time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)}
	tl, err := e.store.Timeline(1, years[0], years[1])
	if err != nil || len(tl.Spans) != 1 || len(tl.Gaps) != 2 {
		t.Errorf("years-wide timeline: %v %+v", err, tl)
	}
	if _, err := e.store.Clip(1, years[0], years[1]); !errors.Is(err, ErrTooLong) || !strings.Contains(err.Error(), "at most 1m0s") {
		t.Errorf("years-wide clip: %v", err)
	}
	if _, err := e.store.Clip(1, day.Add(-time.Hour), day.Add(-time.Minute)); !errors.Is(err, ErrNoRecording) {
		t.Errorf("clip of nothing: %v", err)
	}
	if _, err := e.store.Clip(2, day, day.Add(time.Minute)); !errors.Is(err, ErrNoRecording) {
		t.Errorf("clip of another stream: %v", err)
	}
	// The clips that failed gave their reader slots back.
	for range cap(e.store.readers) + 1 {
		c, err := e.store.Clip(1, day, day.Add(time.Second))
		if err != nil {
			t.Fatalf("after failed clips: %v", err)
		}
		c.Close()
	}
}

// TestQuotaLoopOverwrite fills a small quota ten times over: the total
// stays within the quota plus one volume and the newest data is kept.
func TestQuotaLoopOverwrite(t *testing.T) {
	const quota, volSize = 8 << 20, 2 << 20
	e := newEnv(t, Options{Quota: Quota{Bytes: quota}, VolumeSize: volSize})
	rec := &source{Audio: true, Start: day, FrameBytes: 3000}
	written := int64(0)
	var last Fragment
	for written < 10*quota {
		for _, f := range rec.fragments(1, 10*time.Second) {
			if err := e.store.Append(f); err != nil {
				t.Fatal(err)
			}
			written += int64(len(f.Data))
			last = f
		}
		if b := dirBytes(t, e.opts.Dir); b > quota+volSize {
			t.Fatalf("after %d bytes: %d bytes on disk, quota %d + one volume %d", written, b, quota, volSize)
		}
	}
	st := e.store.Stats()
	if st.Deleted < 20 || st.Bytes > quota+volSize {
		t.Fatalf("stats: %+v", st)
	}
	if !st.Newest.Equal(last.Start.Add(last.Duration)) {
		t.Fatalf("newest %v, last fragment ended %v", st.Newest, last.Start.Add(last.Duration))
	}
	tl, _ := e.store.Timeline(1, day, last.Start.Add(time.Hour))
	if len(tl.Spans) != 1 || tl.Spans[0].Start.Before(st.Oldest) || tl.Recorded < 30*time.Second {
		t.Fatalf("timeline after overwrite: %+v", tl)
	}
	c, err := e.store.Clip(1, last.Start.Add(-20*time.Second), last.Start)
	if err != nil {
		t.Fatal(err)
	}
	checkClip(t, c)
	c.Close()
	if _, err := e.store.Clip(1, day, day.Add(10*time.Second)); !errors.Is(err, ErrNoRecording) {
		t.Fatalf("the oldest data was not overwritten: %v", err)
	}
}

func dirBytes(t testing.TB, dir string) int64 {
	var n int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n += fi.Size()
		}
		return nil
	})
	return n
}

func TestQuotaSmallerThanAVolume(t *testing.T) {
	const quota = 6 << 20
	e := newEnv(t, Options{Quota: Quota{Bytes: quota}}) // volumes default to 256 MiB
	if st := e.store.Stats(); st.VolumeSize != quota/4 {
		t.Fatalf("volume size %d for a %d quota", st.VolumeSize, quota)
	}
	rec := &source{Start: day, FrameBytes: 4000}
	for range 6 {
		e.record(rec.fragments(1, 20*time.Second))
		if b := dirBytes(t, e.opts.Dir); b > quota+quota/4 {
			t.Fatalf("%d bytes on disk for a %d quota", b, quota)
		}
	}
	tiny := newEnv(t, Options{Quota: Quota{Bytes: 1 << 20}})
	err := tiny.store.Append((&source{Start: day}).fragments(1, 3*time.Second)[0])
	if !errors.Is(err, ErrPaused) || !strings.Contains(err.Error(), "quota too small") || !tiny.hasEvent(EventPaused) {
		t.Fatalf("a 1 MiB quota: %v, events %v", err, tiny.eventKinds())
	}
}

func TestRecoveryAfterCrash(t *testing.T) {
	e := newEnv(t, Options{VolumeSize: 2 << 20})
	rec := &source{Audio: true, Start: day, FrameBytes: 3000}
	frags := rec.fragments(1, 40*time.Second)
	e.record(frags)
	before := e.store.Stats()
	e.crash()
	after := e.store.Stats()
	if after.Volumes != before.Volumes || !after.Newest.Equal(before.Newest) || after.Quarantined != 0 {
		t.Fatalf("after the crash: %+v, before %+v", after, before)
	}
	if len(e.eventKinds()) != 0 {
		t.Fatalf("events after a clean recovery: %v", e.eventKinds())
	}
	e.record(rec.fragments(1, 10*time.Second))
	tl, _ := e.store.Timeline(1, day, day.Add(time.Hour))
	if len(tl.Spans) != 1 {
		t.Fatalf("spans after recovery: %+v", tl.Spans)
	}
}

// TestCrashDuringRotation: camd dies after creating the next volume but
// before the catalog lists it. The volume that was being written is
// closed at the next start with its spans read from it: its record had
// none (it was never saved after its creation).
func TestCrashDuringRotation(t *testing.T) {
	e := newEnv(t, Options{VolumeSize: 4 << 20})
	rec := &source{Audio: true, Start: day, FrameBytes: 3000}
	e.record(rec.fragments(1, 10*time.Second))
	v, err := volume.Create(filepath.Join(e.opts.Dir, volFile(2)), 2, volume.Options{MaxSize: 4 << 20, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	v.Close()
	e.crash()
	if len(e.eventKinds()) != 0 {
		t.Fatalf("events: %v", e.eventKinds())
	}
	after := rec.fragments(1, 5*time.Second)
	e.record(after)
	last := after[len(after)-1]
	tl, _ := e.store.Timeline(1, day, day.Add(time.Hour))
	if len(tl.Spans) != 1 || !tl.Spans[0].Start.Equal(day) || !tl.Spans[0].End.Equal(last.Start.Add(last.Duration)) {
		t.Fatalf("timeline after the crash: %+v", tl.Spans)
	}
	if c, err := e.store.Clip(1, day, day.Add(5*time.Second)); err != nil {
		t.Fatalf("clip of what the first volume holds: %v", err)
	} else {
		checkClip(t, c)
		c.Close()
	}
}

func TestDamagedActiveVolumeIsQuarantined(t *testing.T) {
	e := newEnv(t, Options{VolumeSize: 4 << 20})
	rec := &source{Start: day, FrameBytes: 3000}
	e.record(rec.fragments(1, 30*time.Second))
	files, _ := filepath.Glob(filepath.Join(e.opts.Dir, "vol-*.db"))
	e.store.Close()
	e.cat.Close()
	e.store = nil
	active := files[len(files)-1]
	b, _ := os.ReadFile(active)
	os.WriteFile(active, b[:len(b)/3], 0o600) // truncated: power cut on a bad card
	e.open()
	if !e.hasEvent(EventQuarantined) || e.store.Stats().Quarantined != 1 {
		t.Fatalf("events %v, stats %+v", e.eventKinds(), e.store.Stats())
	}
	e.record(rec.fragments(1, 10*time.Second)) // recording carries on
	if st := e.store.Stats(); st.Volumes < 1 || st.Newest.IsZero() {
		t.Fatalf("after quarantine: %+v", st)
	}
	os.WriteFile(active, b, 0o600) // for the cleanup's check
}

func TestCatalogPointsAtMissingVolume(t *testing.T) {
	e := newEnv(t, Options{VolumeSize: 1 << 20})
	rec := &source{Start: day, FrameBytes: 3000}
	e.record(rec.fragments(1, 60*time.Second))
	files, _ := filepath.Glob(filepath.Join(e.opts.Dir, "vol-*.db"))
	if len(files) < 3 {
		t.Fatalf("%d volumes", len(files))
	}
	e.store.Close()
	e.cat.Close()
	e.store = nil
	os.Remove(files[1])
	e.open()
	if !e.hasEvent(EventMissing) {
		t.Fatalf("events: %v", e.eventKinds())
	}
	tl, _ := e.store.Timeline(1, day, day.Add(time.Hour))
	if len(tl.Spans) != 2 {
		t.Fatalf("spans around the missing volume: %+v", tl.Spans)
	}
	e.record(rec.fragments(1, 5*time.Second))
}

func TestOrphansAndForeignFiles(t *testing.T) {
	e := newEnv(t, Options{VolumeSize: 1 << 20})
	rec := &source{Start: day, FrameBytes: 3000}
	e.record(rec.fragments(1, 30*time.Second))
	e.store.Close()
	e.cat.Close()
	e.store = nil
	// The catalog is lost: every volume is an orphan and is adopted.
	os.Remove(filepath.Join(e.dir, "catalog.db"))
	// Another program's bbolt file and a text file, named like volumes.
	db, _ := bbolt.Open(filepath.Join(e.opts.Dir, "vol-00000000000000f0.db"), 0o600, nil)
	db.Update(func(tx *bbolt.Tx) error {
		b, _ := tx.CreateBucket([]byte("theirs"))
		return b.Put([]byte("k"), bytes.Repeat([]byte("v"), 100_000))
	})
	db.Close()
	os.WriteFile(filepath.Join(e.opts.Dir, "vol-00000000000000f1.db"), bytes.Repeat([]byte("text "), 20_000), 0o600)
	// A volume whose creation a crash interrupted.
	os.WriteFile(filepath.Join(e.opts.Dir, "vol-00000000000000f2.db"), nil, 0o600)
	e.open()
	tl, _ := e.store.Timeline(1, day, day.Add(time.Hour))
	if len(tl.Spans) != 1 || tl.Recorded < 29*time.Second {
		t.Fatalf("adopted timeline: %+v", tl)
	}
	n := 0
	for _, k := range e.eventKinds() {
		if k == EventForeign {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("events: %v", e.eventKinds())
	}
	moved, _ := filepath.Glob(filepath.Join(e.opts.Dir, "quarantine", "vol-*"))
	if len(moved) != 2 {
		t.Fatalf("moved aside: %v", moved)
	}
	if _, err := os.Stat(filepath.Join(e.opts.Dir, "vol-00000000000000f2.db")); err == nil {
		t.Fatal("unfinished volume left behind")
	}
	e.record(rec.fragments(1, 5*time.Second))
	files, _ := filepath.Glob(filepath.Join(e.opts.Dir, "vol-*.db"))
	if last := filepath.Base(files[len(files)-1]); last <= "vol-00000000000000f2.db" {
		t.Fatalf("new volume %s reuses a number", last)
	}
}

func TestClockGoingBackStartsANewVolume(t *testing.T) {
	e := newEnv(t, Options{})
	rec := &source{Start: day.Add(time.Hour)}
	e.record(rec.fragments(1, 10*time.Second))
	rec2 := &source{Start: day}
	e.record(rec2.fragments(1, 10*time.Second))
	if st := e.store.Stats(); st.Volumes != 2 {
		t.Fatalf("volumes: %+v", st)
	}
	tl, _ := e.store.Timeline(1, day.Add(-time.Hour), day.Add(2*time.Hour))
	if len(tl.Spans) != 2 || !tl.Spans[0].Start.Equal(day) {
		t.Fatalf("timeline: %+v", tl.Spans)
	}
}

func TestClipSurvivesDeletionOfItsVolume(t *testing.T) {
	e := newEnv(t, Options{VolumeSize: 1 << 20, Quota: Quota{Bytes: 5 << 20}})
	rec := &source{Start: day, FrameBytes: 3000, Audio: true}
	e.record(rec.fragments(1, 30*time.Second))
	c, err := e.store.Clip(1, day, day.Add(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Recording goes on and overwrites the volumes being read.
	e.record(rec.fragments(1, 120*time.Second))
	if _, err := e.store.Clip(1, day, day.Add(10*time.Second)); !errors.Is(err, ErrNoRecording) {
		t.Fatalf("old range still there: %v", err)
	}
	if n := checkClip(t, c); n < 10*90_000 {
		t.Fatalf("read %d bytes of a clip whose volumes were deleted", n)
	}
}

func TestClipStartsAtAKeyframe(t *testing.T) {
	e := newEnv(t, Options{})
	// A passthrough stream with a keyframe every 3 s: fragments are cut
	// between keyframes and only every third starts with one.
	rec := &source{Start: day, KeyEvery: 3, Audio: true}
	e.record(rec.fragments(1, 30*time.Second))
	c, err := e.store.Clip(1, day.Add(4*time.Second), day.Add(8*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !c.Start.Equal(day.Add(3 * time.Second)) {
		t.Fatalf("clip starts at %v, want the keyframe at 3 s", c.Start.Sub(day))
	}
	checkClip(t, c)
}

// TestClipsAreBounded: each clip (an export, a playback) may map a whole
// volume, so only Options.MaxReaders are open at once; beyond that Clip
// fails with ErrBusy until one is closed. The default keeps what they map
// within 1 GiB, at most 4.
func TestClipsAreBounded(t *testing.T) {
	e := newEnv(t, Options{MaxReaders: 2, VolumeSize: 1 << 20})
	rec := &source{Start: day, FrameBytes: 3000}
	e.record(rec.fragments(1, 30*time.Second))
	var open []*Clip
	for range 2 {
		c, err := e.store.Clip(1, day, day.Add(20*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, c)
	}
	if _, err := e.store.Clip(1, day, day.Add(time.Second)); !errors.Is(err, ErrBusy) {
		t.Fatalf("a third clip: %v, want ErrBusy", err)
	}
	// The open ones still read, each from volume to volume.
	for _, c := range open {
		checkClip(t, c)
	}
	open[0].Close()
	open[0].Close() // twice gives back one slot
	c, err := e.store.Clip(1, day, day.Add(time.Second))
	if err != nil {
		t.Fatalf("after one closed: %v", err)
	}
	if _, err := e.store.Clip(1, day, day.Add(time.Second)); !errors.Is(err, ErrBusy) {
		t.Fatalf("a third clip after closing twice: %v, want ErrBusy", err)
	}
	c.Close()
	open[1].Close()

	for _, c := range []struct {
		volume int64
		want   int
	}{{0, 4}, {256 << 20, 4}, {512 << 20, 2}, {4 << 20, 4}} {
		e := newEnv(t, Options{VolumeSize: c.volume, Quota: Quota{Bytes: 1 << 40}})
		if got := cap(e.store.readers); got != c.want {
			t.Errorf("volumes of %d bytes: %d readers, want %d", c.volume, got, c.want)
		}
	}
}

// TestClipPartsCarryTheirInit: each part of a clip comes with the init
// segment in force for it, the one stored with the first fragment after a
// change (the store keeps an init segment only when it changes).
func TestClipPartsCarryTheirInit(t *testing.T) {
	e := newEnv(t, Options{})
	e.record((&source{Start: day}).fragments(1, 5*time.Second))
	e.record((&source{Start: day.Add(5 * time.Second), Audio: true}).fragments(1, 5*time.Second))
	c, err := e.store.Clip(1, day, day.Add(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	checkClip(t, c)
	for i, p := range c.Parts() {
		if want := initData(1, i >= 5); !bytes.Equal(p.Init, want) {
			t.Errorf("part %d: init %q, want %q", i, p.Init[:30], want[:30])
		}
	}
}

// TestCloseEndsOpenClips: a clip still open when the store closes (an
// export being downloaded during a factory reset) is closed with it. Its
// reads fail from then on, and the store holds none of its files open,
// so erasing them frees them: before, the clip kept the old volumes
// readable after the store closed.
func TestCloseEndsOpenClips(t *testing.T) {
	e := newEnv(t, Options{VolumeSize: 1 << 20})
	rec := &source{Start: day, FrameBytes: 3000}
	e.record(rec.fragments(1, 60*time.Second))
	var clips []*Clip
	for _, from := range []time.Duration{0, 30 * time.Second} {
		c, err := e.store.Clip(1, day.Add(from), day.Add(from+20*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Read(0, nil); err != nil {
			t.Fatal(err)
		}
		clips = append(clips, c)
	}
	if len(testenv.OpenFiles(t, e.opts.Dir)) == 0 {
		t.Fatal("the clips hold no volume open")
	}
	e.store.Close()
	for _, c := range clips {
		if _, err := c.Read(1, nil); !errors.Is(err, ErrClosed) {
			t.Errorf("read after the store closed: %v", err)
		}
	}
	if open := testenv.OpenFiles(t, e.opts.Dir); len(open) != 0 {
		t.Fatalf("open after Close: %v", open)
	}
	if _, err := e.store.Clip(1, day, day.Add(time.Second)); !errors.Is(err, ErrClosed) {
		t.Fatalf("a clip of a closed store: %v", err)
	}
	// Every reader slot came back: the clips' Close after the store's is
	// a no-op.
	for _, c := range clips {
		c.Close()
	}
	if n := len(e.store.readers); n != 0 {
		t.Fatalf("%d reader slots held", n)
	}
}

// TestFilesNameWhatTheStoreKeeps: Files matches the volumes and the
// quarantine directory, and nothing else in the directory.
func TestFilesNameWhatTheStoreKeeps(t *testing.T) {
	e := newEnv(t, Options{VolumeSize: 1 << 20})
	rec := &source{Start: day, FrameBytes: 3000}
	e.record(rec.fragments(1, 30*time.Second))
	e.close()
	os.WriteFile(filepath.Join(e.opts.Dir, "vol-00000000000000f1.db"), bytes.Repeat([]byte("text "), 20_000), 0o600)
	os.WriteFile(filepath.Join(e.opts.Dir, "notes.txt"), []byte("theirs"), 0o600)
	e.open() // moves the text file to the quarantine
	e.close()
	var kept []string
	for _, pat := range Files(e.opts.Dir) {
		m, err := filepath.Glob(pat)
		if err != nil {
			t.Fatal(err)
		}
		kept = append(kept, m...)
	}
	entries, _ := os.ReadDir(e.opts.Dir)
	var all []string
	for _, de := range entries {
		all = append(all, filepath.Join(e.opts.Dir, de.Name()))
	}
	want := slices.DeleteFunc(slices.Clone(all), func(p string) bool { return filepath.Base(p) == "notes.txt" })
	slices.Sort(kept)
	if !slices.Equal(kept, want) || !slices.Contains(kept, filepath.Join(e.opts.Dir, quarantineDir)) || len(kept) < 3 {
		t.Fatalf("Files matched %v of %v", kept, all)
	}
}
