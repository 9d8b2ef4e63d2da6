package recordings

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mcfmp4 "github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"go.etcd.io/bbolt"

	"github.com/camd-project/camd/media/fmp4"
	"github.com/camd-project/camd/media/fmp4/fmp4test"
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
	now    time.Time
	nowMu  sync.Mutex
}

func newEnv(t testing.TB, opts Options) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir(), opts: opts}
	e.open()
	t.Cleanup(func() { e.close() })
	return e
}

func (e *env) clock() time.Time {
	e.nowMu.Lock()
	defer e.nowMu.Unlock()
	if e.now.IsZero() {
		return time.Now()
	}
	return e.now
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
	}
	if o.Now == nil {
		o.Now = e.clock
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

func (e *env) hasEvent(kind string) bool {
	for _, k := range e.eventKinds() {
		if k == kind {
			return true
		}
	}
	return false
}

// recorder turns frames into fragments for a stream, as the recorder does.
type recorder struct {
	src *fmp4test.Source
	fr  *fmp4.Fragmenter
}

func newRecorder(src *fmp4test.Source) *recorder {
	return &recorder{src: src, fr: fmp4.New(fmp4.Options{})}
}

func toFragment(stream uint32, f *fmp4.Fragment) Fragment {
	return Fragment{Stream: stream, Start: f.Start, Duration: f.Duration, Key: f.Key, Audio: f.AudioFrames > 0,
		Init: f.Init.Data, Data: f.Data}
}

func (r *recorder) fragments(stream uint32, d time.Duration) []Fragment {
	var out []Fragment
	for _, f := range r.src.Frames(d) {
		if frag := r.fr.Push(f); frag != nil {
			out = append(out, toFragment(stream, frag))
		}
	}
	return out
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

func TestTimelineAndExport(t *testing.T) {
	e := newEnv(t, Options{})
	rec := newRecorder(&fmp4test.Source{Audio: true, Start: day, FrameBytes: 2000})
	e.record(rec.fragments(1, 60*time.Second))
	rec.src.Frames(30 * time.Second) // 30 s not recorded
	rec.fr.Flush()
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

	x, err := e.store.Export(1, day.Add(10*time.Second+300*time.Millisecond), day.Add(20*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	if d := day.Add(10*time.Second + 300*time.Millisecond).Sub(x.Start); d < 0 || d > fmp4.New(fmp4.Options{}).Options().Max {
		t.Errorf("export starts %v before the range", d)
	}
	b, err := io.ReadAll(x)
	if err != nil || int64(len(b)) != x.Size() {
		t.Fatalf("read %d of %d: %v", len(b), x.Size(), err)
	}
	checkMP4(t, b, x.End.Sub(x.Start))

	// Range reads see the same bytes.
	for _, off := range []int64{0, 100, int64(len(b)) / 3, int64(len(b)) - 10} {
		x.Seek(off, io.SeekStart)
		p := make([]byte, 5000)
		n, _ := io.ReadFull(x, p)
		if !bytes.Equal(p[:n], b[off:off+int64(n)]) {
			t.Errorf("read at %d differs", off)
		}
	}
}

// checkMP4 parses an exported file: an init segment with both tracks and
// fragments numbered from 1 whose times start at 0 and continue.
func checkMP4(t testing.TB, b []byte, dur time.Duration) {
	t.Helper()
	var init mcfmp4.Init
	if err := init.Unmarshal(bytes.NewReader(b)); err != nil {
		t.Fatalf("init: %v", err)
	}
	if len(init.Tracks) != 2 {
		t.Fatalf("%d tracks", len(init.Tracks))
	}
	i := bytes.Index(b, []byte("moof")) - 4
	var parts mcfmp4.Parts
	if err := parts.Unmarshal(b[i:]); err != nil {
		t.Fatalf("fragments: %v", err)
	}
	var end uint64
	for n, p := range parts {
		if p.SequenceNumber != uint32(n+1) {
			t.Fatalf("fragment %d numbered %d", n, p.SequenceNumber)
		}
		for _, tr := range p.Tracks {
			if tr.ID != fmp4.VideoTrack {
				continue
			}
			if n == 0 && tr.BaseTime > 90000/10 {
				t.Errorf("video starts at %d ticks", tr.BaseTime)
			}
			if n > 0 && tr.BaseTime != end {
				t.Errorf("fragment %d video at %d, want %d", n, tr.BaseTime, end)
			}
			end = tr.BaseTime
			for _, s := range tr.Samples {
				end += uint64(s.Duration)
			}
		}
	}
	if got := time.Duration(end) * time.Second / 90000; got < dur-50*time.Millisecond || got > dur+50*time.Millisecond {
		t.Errorf("video lasts %v, export says %v", got, dur)
	}
}

func TestBadRanges(t *testing.T) {
	e := newEnv(t, Options{MaxExport: time.Minute})
	rec := newRecorder(&fmp4test.Source{Audio: true, Start: day})
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
		if _, err := e.store.Export(1, c.from, c.to); !errors.Is(err, c.want) {
			t.Errorf("%s: Export: %v", c.name, err)
		}
	}
	// Years wide: the timeline is what there is; the export is too long.
	years := [2]time.Time{time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)}
	tl, err := e.store.Timeline(1, years[0], years[1])
	if err != nil || len(tl.Spans) != 1 || len(tl.Gaps) != 2 {
		t.Errorf("years-wide timeline: %v %+v", err, tl)
	}
	if _, err := e.store.Export(1, years[0], years[1]); !errors.Is(err, ErrTooLong) || !strings.Contains(err.Error(), "at most 1m0s") {
		t.Errorf("years-wide export: %v", err)
	}
	if _, err := e.store.Export(1, day.Add(-time.Hour), day.Add(-time.Minute)); !errors.Is(err, ErrNoRecording) {
		t.Errorf("export of nothing: %v", err)
	}
	if _, err := e.store.Export(2, day, day.Add(time.Minute)); !errors.Is(err, ErrNoRecording) {
		t.Errorf("export of another stream: %v", err)
	}
}

// TestQuotaLoopOverwrite fills a small quota ten times over: the total
// stays within the quota plus one volume and the newest data is kept.
func TestQuotaLoopOverwrite(t *testing.T) {
	const quota, volSize = 8 << 20, 2 << 20
	e := newEnv(t, Options{Quota: Quota{Bytes: quota}, VolumeSize: volSize})
	rec := newRecorder(&fmp4test.Source{Audio: true, Start: day, FrameBytes: 3000})
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
	x, err := e.store.Export(1, last.Start.Add(-20*time.Second), last.Start)
	if err != nil {
		t.Fatal(err)
	}
	x.Close()
	if _, err := e.store.Export(1, day, day.Add(10*time.Second)); !errors.Is(err, ErrNoRecording) {
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
	rec := newRecorder(&fmp4test.Source{Start: day, FrameBytes: 4000})
	for range 6 {
		e.record(rec.fragments(1, 20*time.Second))
		if b := dirBytes(t, e.opts.Dir); b > quota+quota/4 {
			t.Fatalf("%d bytes on disk for a %d quota", b, quota)
		}
	}
	tiny := newEnv(t, Options{Quota: Quota{Bytes: 1 << 20}})
	err := tiny.store.Append(newRecorder(&fmp4test.Source{Start: day}).fragments(1, 3*time.Second)[0])
	if !errors.Is(err, ErrPaused) || !strings.Contains(err.Error(), "quota too small") || !tiny.hasEvent(EventPaused) {
		t.Fatalf("a 1 MiB quota: %v, events %v", err, tiny.eventKinds())
	}
}

func TestRecoveryAfterCrash(t *testing.T) {
	e := newEnv(t, Options{VolumeSize: 2 << 20})
	rec := newRecorder(&fmp4test.Source{Audio: true, Start: day, FrameBytes: 3000})
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
	rec := newRecorder(&fmp4test.Source{Audio: true, Start: day, FrameBytes: 3000})
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
	if x, err := e.store.Export(1, day, day.Add(5*time.Second)); err != nil {
		t.Fatalf("export of what the first volume holds: %v", err)
	} else {
		x.Close()
	}
}

func TestDamagedActiveVolumeIsQuarantined(t *testing.T) {
	e := newEnv(t, Options{VolumeSize: 4 << 20})
	rec := newRecorder(&fmp4test.Source{Start: day, FrameBytes: 3000})
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
	rec := newRecorder(&fmp4test.Source{Start: day, FrameBytes: 3000})
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
	rec := newRecorder(&fmp4test.Source{Start: day, FrameBytes: 3000})
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
	rec := newRecorder(&fmp4test.Source{Start: day.Add(time.Hour)})
	e.record(rec.fragments(1, 10*time.Second))
	rec2 := newRecorder(&fmp4test.Source{Start: day})
	e.record(rec2.fragments(1, 10*time.Second))
	if st := e.store.Stats(); st.Volumes != 2 {
		t.Fatalf("volumes: %+v", st)
	}
	tl, _ := e.store.Timeline(1, day.Add(-time.Hour), day.Add(2*time.Hour))
	if len(tl.Spans) != 2 || !tl.Spans[0].Start.Equal(day) {
		t.Fatalf("timeline: %+v", tl.Spans)
	}
}

func TestExportSurvivesDeletionOfItsVolume(t *testing.T) {
	e := newEnv(t, Options{VolumeSize: 1 << 20, Quota: Quota{Bytes: 5 << 20}})
	rec := newRecorder(&fmp4test.Source{Start: day, FrameBytes: 3000, Audio: true})
	e.record(rec.fragments(1, 30*time.Second))
	x, err := e.store.Export(1, day, day.Add(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	// Recording goes on and overwrites the volumes being exported.
	e.record(rec.fragments(1, 120*time.Second))
	if _, err := e.store.Export(1, day, day.Add(10*time.Second)); !errors.Is(err, ErrNoRecording) {
		t.Fatalf("old range still there: %v", err)
	}
	b, err := io.ReadAll(x)
	if err != nil || int64(len(b)) != x.Size() {
		t.Fatalf("export after its volumes were deleted: %d of %d bytes: %v", len(b), x.Size(), err)
	}
	checkMP4(t, b, x.End.Sub(x.Start))
}

func TestExportStartsAtAKeyframe(t *testing.T) {
	e := newEnv(t, Options{})
	// A passthrough stream with a keyframe every 3 s: fragments are cut
	// between keyframes and only every other starts with one.
	rec := newRecorder(&fmp4test.Source{Start: day, GOP: 90, Audio: true})
	e.record(rec.fragments(1, 30*time.Second))
	x, err := e.store.Export(1, day.Add(4*time.Second), day.Add(8*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	if !x.Start.Equal(day.Add(3 * time.Second)) {
		t.Fatalf("export starts at %v, want the keyframe at 3 s", x.Start.Sub(day))
	}
}
