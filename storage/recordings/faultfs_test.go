//go:build linux

package recordings

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
	"unsafe"

	"go.etcd.io/bbolt"

	"github.com/camd-project/camd/internal/faultfs"
	"github.com/camd-project/camd/storage"
	"github.com/camd-project/camd/storage/volume"
)

// The tests in this file put the volumes on a card that fails: a FUSE
// file system (package faultfs) whose writes, fsyncs, truncations or
// reads return EIO on demand, as a worn-out SD card's do. The card is
// mounted outside the test's synctest bubble (its server is another
// process); inside, the store's retry pause is fake time that
// time.Sleep moves past at once, while the file system calls stay real.

// TestFaultFSServer is the FUSE server that faultfs runs in a child
// process.
func TestFaultFSServer(t *testing.T) { faultfs.Serve(t) }

// setFaults puts faults in force on the card.
func setFaults(t *testing.T, card *faultfs.FS, faults ...faultfs.Fault) {
	t.Helper()
	if err := card.Set(faults...); err != nil {
		t.Fatal(err)
	}
}

// healCard removes the faults.
func healCard(t *testing.T, card *faultfs.FS) {
	t.Helper()
	if err := card.Heal(); err != nil {
		t.Fatal(err)
	}
}

// hitsOf counts the operations of ops that a fault failed.
func hitsOf(card *faultfs.FS, ops faultfs.Op) uint64 {
	var n uint64
	for op := faultfs.Read; op <= faultfs.Create; op <<= 1 {
		if ops&op != 0 {
			n += card.Hits(op)
		}
	}
	return n
}

// TestFailingCardPausesAndResumes: the card starts failing with EIO while
// recording. Recording pauses with one event naming the reason and the
// error, the store leaves the card alone until it is time to retry, the
// recordings made before stay readable, and once the card works again
// recording resumes with an event; the paused time is a gap, and the
// catalog agrees with the volumes throughout.
func TestFailingCardPausesAndResumes(t *testing.T) {
	for _, c := range []struct {
		name  string
		fault faultfs.Fault
	}{
		{"write", faultfs.Fault{Ops: faultfs.Write, Err: syscall.EIO}},
		{"fsync", faultfs.Fault{Ops: faultfs.Fsync, Err: syscall.EIO}},
		// The volume grows by ftruncate in steps of 128 KiB here.
		{"growing the volume", faultfs.Fault{Ops: faultfs.Truncate, Err: syscall.EIO}},
		// The card fails when the next volume is created.
		{"new volume", faultfs.Fault{Ops: faultfs.Create, Err: syscall.EIO}},
		{"write and fsync", faultfs.Fault{Ops: faultfs.Write | faultfs.Fsync | faultfs.Truncate, Err: syscall.EIO}},
	} {
		t.Run(c.name, func(t *testing.T) {
			card := faultfs.MountTemp(t)
			synctest.Test(t, func(t *testing.T) { failingCard(t, card, c.fault) })
		})
	}
}

func failingCard(t *testing.T, card *faultfs.FS, fault faultfs.Fault) {
	const retry = time.Minute
	e := newEnv(t, Options{Dir: filepath.Join(card.Dir, "rec"), VolumeSize: 1 << 20, RetryPause: retry, Quota: Quota{Bytes: 1 << 30}})
	rec := &source{Audio: true, Start: day, FrameBytes: 3000}
	before := rec.fragments(1, 5*time.Second)
	e.record(before)
	lastOK := before[len(before)-1]

	setFaults(t, card, fault)
	failures := 0
	var hits uint64
	for _, f := range rec.fragments(1, 20*time.Second) {
		err := e.store.Append(f)
		switch {
		case err == nil && failures == 0:
			lastOK = f
			continue
		case err == nil:
			t.Fatalf("an append at %v went through on a failing card", f.Start)
		case !errors.Is(err, ErrPaused) || !strings.Contains(err.Error(), "storage failing"):
			t.Fatalf("append on a failing card: %v", err)
		}
		failures++
		if failures == 1 {
			hits = hitsOf(card, fault.Ops)
		} else if hitsOf(card, fault.Ops) != hits {
			t.Fatalf("the store went back to the card %d times before the retry pause", hitsOf(card, fault.Ops)-hits)
		}
	}
	if failures == 0 || hitsOf(card, fault.Ops) == 0 {
		t.Fatalf("%d failures, %d faults injected", failures, hitsOf(card, fault.Ops))
	}
	paused := e.eventsOf(EventPaused)
	if len(paused) > 0 {
		t.Logf("%d fragments dropped, %d faults injected; paused: %s", failures, hitsOf(card, fault.Ops), paused[0].Data["error"])
	}
	if len(paused) != 1 || paused[0].Data["reason"] != "storage failing" || !strings.Contains(paused[0].Data["error"], "input/output error") {
		t.Fatalf("paused events: %+v", paused)
	}
	if st := e.store.Stats(); st.Paused != "storage failing" || st.Dropped != uint64(failures) {
		t.Fatalf("stats %+v after %d failures", st, failures)
	}

	// Time to retry: the card is still failing; the store tries
	// once and stays paused, without a second event.
	time.Sleep(retry + time.Second)
	if err := e.store.Append(rec.fragments(1, time.Second)[0]); !errors.Is(err, ErrPaused) {
		t.Fatalf("retry on a failing card: %v", err)
	}
	if hitsOf(card, fault.Ops) == hits {
		t.Error("the retry did not try the card")
	}
	if n := len(e.eventsOf(EventPaused)); n != 1 || e.hasEvent(EventResumed) || e.hasEvent(EventQuarantined) {
		t.Fatalf("events after the retry: %v", e.eventKinds())
	}

	// What was recorded before the card failed is still there.
	x, err := e.store.Clip(1, day.Add(time.Second), day.Add(4*time.Second))
	if err != nil {
		t.Fatalf("clip while the card fails writes: %v", err)
	}
	checkClip(t, x)
	x.Close()

	// The card works again.
	healCard(t, card)
	time.Sleep(retry + time.Second)
	after := rec.fragments(1, 5*time.Second)
	e.record(after)
	if n := len(e.eventsOf(EventResumed)); n != 1 || e.store.Paused() != nil {
		t.Fatalf("after the card healed: events %v, paused %v", e.eventKinds(), e.store.Paused())
	}
	want := []Span{
		{Stream: 1, Start: day, End: lastOK.Start.Add(lastOK.Duration)},
		{Stream: 1, Start: after[0].Start, End: after[len(after)-1].Start.Add(after[len(after)-1].Duration)},
	}
	tl, _ := e.store.Timeline(1, day, day.Add(time.Hour))
	if !spansEqual(tl.Spans, want) {
		t.Fatalf("timeline %+v, want %+v", tl.Spans, want)
	}
	checkIndex(t, e)
	if tl2, _ := e.store.Timeline(1, day, day.Add(time.Hour)); !spansEqual(tl2.Spans, want) {
		t.Fatalf("timeline after reopening %+v, want %+v", tl2.Spans, want)
	}
}

func spansEqual(a, b []Span) bool {
	return slices.EqualFunc(a, b, func(x, y Span) bool {
		return x.Stream == y.Stream && x.Start.Equal(y.Start) && x.End.Equal(y.End)
	})
}

// checkIndex closes the store and checks the catalog against the card:
// one record per volume file and no other, the active volume last, every
// record's spans those its volume's fragments make, the catalog and the
// volumes consistent. It then opens the store again, which must find
// nothing to repair.
func checkIndex(t *testing.T, e *env) {
	t.Helper()
	if err := e.store.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := e.cat.Check(); err != nil {
		t.Fatalf("catalog: %v", err)
	}
	var recs []vol
	e.cat.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(storage.BucketRecordings).ForEach(func(k, v []byte) error {
			var r vol
			if err := json.Unmarshal(v, &r); err != nil {
				t.Errorf("record %x: %v", k, err)
			}
			recs = append(recs, r)
			return nil
		})
	})
	files, _ := filepath.Glob(filepath.Join(e.opts.Dir, "vol-*.db"))
	if len(files) != len(recs) {
		t.Fatalf("%d volume files, %d catalog records: %v", len(files), len(recs), files)
	}
	for i, r := range recs {
		if r.File != filepath.Base(files[i]) {
			t.Fatalf("record %d is %s, file %s", i, r.File, files[i])
		}
		if want := stateClosed; i == len(recs)-1 {
			if r.State != stateActive {
				t.Errorf("newest volume %s is %s", r.File, r.State)
			}
		} else if r.State != want {
			t.Errorf("volume %s is %s", r.File, r.State)
		}
		if err := volume.Check(files[i], volume.Options{}); err != nil {
			t.Fatalf("volume: %v", err)
		}
		v, err := volume.Open(files[i], volume.Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		spans, err := scanSpans(v)
		v.Close()
		if err != nil {
			t.Fatalf("%s: %v", r.File, err)
		}
		if r.Rescan {
			t.Errorf("%s: its spans are still to be read from it", r.File)
		}
		// The catalog lists spans as they were recorded, a scan stream
		// by stream.
		byStream := func(a, b Span) int { return cmp.Or(cmp.Compare(a.Stream, b.Stream), a.Start.Compare(b.Start)) }
		slices.SortFunc(spans, byStream)
		if got := slices.SortedFunc(slices.Values(r.Spans), byStream); !spansEqual(spans, got) {
			t.Errorf("%s: catalog says %+v, the volume holds %+v", r.File, r.Spans, spans)
		}
	}
	e.cat.Close()
	n := len(e.eventKinds())
	e.store = nil
	e.open()
	if got := e.eventKinds()[n:]; len(got) != 0 {
		t.Fatalf("reopening found something to repair: %v", got)
	}
}

// fragmentOffset finds where the data of stream 1's fragment at start
// lies in a volume file: an offset into the file and the length.
func fragmentOffset(t *testing.T, path string, start time.Time) (int64, int) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var off int64
	var n int
	err = db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte("frags")).Bucket(volume.Key{Stream: 1, Start: start.UnixNano()}.Bytes())
		if b == nil {
			return errors.New("no fragment there")
		}
		d := b.Get([]byte("m"))
		off, n = int64(uintptr(unsafe.Pointer(&d[0]))-db.Info().Data), len(d)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return off, n
}

// childEnv names the test that a child process runs on its own.
const childEnv = "CAMD_RECORDINGS_CHILD"

// inChild runs body in a child process (the test binary started again for
// this test alone) and returns its output and how it ended: what a fault
// that kills the process does shows there, not in this one. In the child
// itself it runs body and returns child true.
func inChild(t *testing.T, body func(t *testing.T)) (child bool, out string, err error) {
	t.Helper()
	if os.Getenv(childEnv) == t.Name() {
		body(t)
		return true, "", nil
	}
	// A child that dies leaves its temporary directories: here, they go
	// with this test's, once its file system's server has unmounted it.
	tmp := t.TempDir()
	t.Cleanup(func() { waitUnmounted(tmp) })
	cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), childEnv+"="+t.Name(), "TMPDIR="+tmp)
	b, err := cmd.CombinedOutput()
	return false, string(b), err
}

// waitUnmounted waits until nothing is mounted under dir, detaching what
// is still there after 10 s.
func waitUnmounted(dir string) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile("/proc/self/mounts")
		var under []string
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) > 1 && strings.HasPrefix(f[1], dir+"/") {
				under = append(under, f[1])
			}
		}
		if len(under) == 0 {
			return
		}
		if time.Now().After(deadline) {
			for _, m := range under {
				syscall.Unmount(m, syscall.MNT_DETACH)
			}
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestBadSectorUnderARecording: a few bytes of a recorded fragment can no
// longer be read (the usual way an SD card wears out). Exporting that
// stretch must fail with an error, without taking the process down, and
// recording must go on.
func TestBadSectorUnderARecording(t *testing.T) {
	faultfs.Need(t)
	child, out, err := inChild(t, func(t *testing.T) {
		card := faultfs.MountTemp(t)
		e := newEnv(t, Options{Dir: filepath.Join(card.Dir, "rec"), VolumeSize: 1 << 20, Quota: Quota{Bytes: 1 << 30}})
		rec := &source{Audio: true, Start: day, FrameBytes: 3000}
		frags := rec.fragments(1, 20*time.Second)
		e.record(frags)
		if st := e.store.Stats(); st.Volumes < 2 {
			t.Fatalf("want the first volume closed: %+v", st)
		}
		// A page in the middle of the data of a fragment of the first
		// (closed) volume goes bad.
		bad := frags[3]
		off, n := fragmentOffset(t, filepath.Join(card.Backing, "rec", volFile(1)), bad.Start)
		page := (off + int64(n)/2) &^ 4095
		setFaults(t, card, faultfs.Fault{Ops: faultfs.Read, Err: syscall.EIO, Files: volFile(1), Offset: page, Length: 4096})
		t.Logf("bad page at %d, inside the fragment at %d (%d bytes)", page, off, n)

		x, err := e.store.Clip(1, bad.Start, bad.Start.Add(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		_, err = x.Read(0, nil)
		if err == nil || !errors.Is(err, syscall.EIO) || card.Hits(faultfs.Read) == 0 {
			t.Fatalf("read over a bad sector: %v, %d reads failed", err, card.Hits(faultfs.Read))
		}
		t.Logf("read over the bad sector: %v", err)
		// The read that faulted let go of the volume, and its mapping
		// (up to a volume's size of address space), though the clip is
		// open.
		if x.ro != nil {
			t.Error("the clip still holds the volume whose read faulted")
		}
		if _, err := x.Read(1, nil); err != nil {
			t.Errorf("the next part after the bad sector: %v", err)
		}
		x.Close()
		if e.hasEvent(EventQuarantined) {
			t.Errorf("a read error quarantined a volume: %v", e.eventKinds())
		}
		// The rest of the recording is still there, and recording goes on.
		if c, err := e.store.Clip(1, frags[8].Start, frags[12].Start); err != nil {
			t.Errorf("clip past the bad sector: %v", err)
		} else {
			checkClip(t, c)
			c.Close()
		}
		e.record(rec.fragments(1, 3*time.Second))
		fmt.Println("SURVIVED")
	})
	if child {
		return
	}
	// bbolt reads the volume through its memory mapping: the SIGBUS of a
	// page that cannot be read must come back as an error, not as a fatal
	// error of the runtime ("unexpected fault address") that would take
	// camd, and live view with it, down.
	if err != nil || !strings.Contains(out, "SURVIVED") {
		t.Fatalf("child: %v\n%s", err, out)
	}
	t.Logf("child:\n%s", out)
}

// TestCardFailingReads: camd starts (after a clean stop or a crash) on a
// card whose reads fail, the whole card or only the volume that was being
// written. Nothing may be quarantined or moved aside; recording pauses
// with "storage failing" (the volume being written is left alone: not
// closed, no new one started), and once reads work again it resumes in
// that volume with everything recorded before in the timeline, the
// catalog agreeing with the volumes.
func TestCardFailingReads(t *testing.T) {
	for _, c := range []struct {
		name  string
		crash bool
		files string // "" the whole card
	}{
		{"whole card after a clean stop", false, ""},
		{"whole card after a crash", true, ""},
		{"volume being written after a clean stop", false, volFile(1)},
		{"volume being written after a crash", true, volFile(1)},
	} {
		t.Run(c.name, func(t *testing.T) {
			card := faultfs.MountTemp(t)
			synctest.Test(t, func(t *testing.T) { cardFailingReads(t, card, c.crash, c.files) })
		})
	}
}

func cardFailingReads(t *testing.T, card *faultfs.FS, crash bool, files string) {
	const retry = time.Minute
	e := newEnv(t, Options{Dir: filepath.Join(card.Dir, "rec"), VolumeSize: 4 << 20, RetryPause: retry, Quota: Quota{Bytes: 1 << 30}})
	rec := &source{Audio: true, Start: day, FrameBytes: 3000}
	before := rec.fragments(1, 10*time.Second)
	e.record(before)
	if crash {
		// As after a kill: the volume's handle goes, the catalog
		// keeps the record written when the volume was created.
		e.store.writeMu.Lock()
		e.store.closeActive(1)
		e.store.writeMu.Unlock()
	} else if err := e.store.Close(); err != nil {
		t.Fatal(err)
	}
	e.cat.Close()
	e.store = nil
	setFaults(t, card, faultfs.Fault{Ops: faultfs.Read, Err: syscall.EIO, Files: files})
	e.open()

	during := rec.fragments(1, 5*time.Second)
	failed := 0
	for _, f := range during {
		if err := e.store.Append(f); err != nil {
			if !errors.Is(err, ErrPaused) {
				t.Fatalf("append: %v", err)
			}
			failed++
		}
	}
	if card.Hits(faultfs.Read) == 0 {
		t.Fatal("no read failed")
	}
	for _, k := range []string{EventQuarantined, EventForeign, EventMissing} {
		if e.hasEvent(k) {
			t.Fatalf("a read error made a %s event: %+v", k, e.events)
		}
	}
	p := e.eventsOf(EventPaused)
	if len(p) != 1 || failed != len(during) {
		t.Fatalf("%d of %d appends failed; paused events %+v", failed, len(during), p)
	}
	if p[0].Data["reason"] != "storage failing" || e.store.Stats().Paused != "storage failing" {
		t.Fatalf("a card whose reads fail pauses recording as %q (%s), stats %+v",
			p[0].Data["reason"], p[0].Data["error"], e.store.Stats())
	}
	if files, _ := filepath.Glob(filepath.Join(card.Backing, "rec", "vol-*.db")); len(files) != 1 {
		t.Fatalf("volumes while paused: %v", files)
	}

	healCard(t, card)
	time.Sleep(retry + time.Second)
	after := rec.fragments(1, 5*time.Second)
	e.record(after)
	if len(e.eventsOf(EventResumed)) != 1 {
		t.Fatalf("events after healing: %v", e.eventKinds())
	}
	want := []Span{
		{Stream: 1, Start: day, End: before[len(before)-1].Start.Add(before[len(before)-1].Duration)},
		{Stream: 1, Start: after[0].Start, End: after[len(after)-1].Start.Add(after[len(after)-1].Duration)},
	}
	tl, _ := e.store.Timeline(1, day, day.Add(time.Hour))
	if !spansEqual(tl.Spans, want) {
		t.Fatalf("timeline %+v, want %+v", tl.Spans, want)
	}
	checkIndex(t, e)
}

// TestUnreadablePageUnderTheWriter: an append's transaction reads a page
// of the volume being written that the card cannot serve (a fault in
// bbolt's memory mapping, possibly with bbolt's locks held). Recording
// pauses with "storage failing", the volume's handle is given up without
// waiting on bbolt's locks, and once the card reads again recording
// resumes in the same volume, nothing recorded lost.
func TestUnreadablePageUnderTheWriter(t *testing.T) {
	card := faultfs.MountTemp(t)
	synctest.Test(t, func(t *testing.T) { unreadablePageUnderTheWriter(t, card) })
}

func unreadablePageUnderTheWriter(t *testing.T, card *faultfs.FS) {
	const retry = time.Minute
	e := newEnv(t, Options{Dir: filepath.Join(card.Dir, "rec"), VolumeSize: 4 << 20, RetryPause: retry, Quota: Quota{Bytes: 1 << 30}})
	// An init segment changed at every fragment: they give the inits
	// bucket a page of its own, which reopening does not read through
	// the mapping, and the first append after it does (the store writes
	// the stream's init segment again).
	recs := []*source{{Audio: true, Start: day, FrameBytes: 3000}}
	var last [1]Fragment
	frags := recs[0].fragments(1, 5*time.Second)
	for i := range frags {
		frags[i].Init = append(frags[i].Init, byte(i))
	}
	e.record(frags)
	last[0] = frags[len(frags)-1]
	e.store.Close()
	e.cat.Close()
	e.store = nil
	var page int64
	db, err := bbolt.Open(filepath.Join(card.Backing, "rec", volFile(1)), 0o600, &bbolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	db.View(func(tx *bbolt.Tx) error {
		page = int64(tx.Bucket([]byte("inits")).Root()) * int64(db.Info().PageSize)
		return nil
	})
	db.Close()
	if page == 0 {
		t.Fatal("the inits bucket lives inline")
	}
	e.open()
	setFaults(t, card, faultfs.Fault{Ops: faultfs.Read, Err: syscall.EIO, Files: volFile(1), Offset: page, Length: 4096})

	during := recs[0].fragments(1, 3*time.Second)
	for _, f := range during {
		if err := e.store.Append(f); !errors.Is(err, ErrPaused) || !strings.Contains(err.Error(), "storage failing") {
			t.Fatalf("append over the unreadable page: %v", err)
		}
	}
	if card.Hits(faultfs.Read) == 0 {
		t.Fatal("no read failed")
	}
	if p := e.eventsOf(EventPaused); len(p) != 1 || p[0].Data["reason"] != "storage failing" {
		t.Fatalf("paused events: %+v", p)
	}
	t.Logf("paused: %s", e.eventsOf(EventPaused)[0].Data["error"])
	if e.hasEvent(EventQuarantined) {
		t.Fatalf("a read error quarantined the volume: %v", e.eventKinds())
	}

	healCard(t, card)
	time.Sleep(retry + time.Second)
	after := recs[0].fragments(1, 3*time.Second)
	e.record(after)
	if len(e.eventsOf(EventResumed)) != 1 {
		t.Fatalf("events after healing: %v", e.eventKinds())
	}
	want := []Span{
		{Stream: 1, Start: day, End: last[0].Start.Add(last[0].Duration)},
		{Stream: 1, Start: after[0].Start, End: after[len(after)-1].Start.Add(after[len(after)-1].Duration)},
	}
	if tl, _ := e.store.Timeline(1, day, day.Add(time.Hour)); !spansEqual(tl.Spans, want) {
		t.Fatalf("timeline %+v, want %+v", tl.Spans, want)
	}
	if files, _ := filepath.Glob(filepath.Join(card.Backing, "rec", "vol-*.db")); len(files) != 1 {
		t.Fatalf("volumes: %v", files)
	}
	checkIndex(t, e)
}

// TestCrashDuringRotationOnACardWhoseReadsFail: camd died between
// creating the next volume and listing it in the catalog, and at the next
// start the card cannot read the volume that was being written, whose
// record lists none of its recordings. The volume is not quarantined and
// recording goes on in a new one; the volume's recordings reach the
// timeline at the first start at which the card reads it.
func TestCrashDuringRotationOnACardWhoseReadsFail(t *testing.T) {
	card := faultfs.MountTemp(t)
	e := newEnv(t, Options{Dir: filepath.Join(card.Dir, "rec"), VolumeSize: 4 << 20, Quota: Quota{Bytes: 1 << 30}})
	rec := &source{Audio: true, Start: day, FrameBytes: 3000}
	before := rec.fragments(1, 10*time.Second)
	e.record(before)
	v, err := volume.Create(filepath.Join(e.opts.Dir, volFile(2)), 2, volume.Options{MaxSize: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	v.Close()
	// The kill: the handle goes, the catalog lists the first volume as
	// being written, with no spans, and not the second.
	e.store.writeMu.Lock()
	e.store.closeActive(1)
	e.store.writeMu.Unlock()
	e.cat.Close()
	e.store = nil
	setFaults(t, card, faultfs.Fault{Ops: faultfs.Read, Err: syscall.EIO, Files: volFile(1)})
	e.open()
	if card.Hits(faultfs.Read) == 0 {
		t.Fatal("no read failed")
	}
	after := rec.fragments(1, 5*time.Second)
	e.record(after)
	if k := e.eventKinds(); len(k) != 0 {
		t.Fatalf("events: %v", k)
	}
	end := func(f Fragment) time.Time { return f.Start.Add(f.Duration) }
	want := []Span{{Stream: 1, Start: after[0].Start, End: end(after[len(after)-1])}}
	if tl, _ := e.store.Timeline(1, day, day.Add(time.Hour)); !spansEqual(tl.Spans, want) {
		t.Fatalf("timeline while the card cannot read the first volume %+v, want %+v", tl.Spans, want)
	}

	healCard(t, card)
	e.store.Close()
	e.cat.Close()
	e.store = nil
	e.open()
	// The recording resumed where it stopped: one span.
	want = []Span{{Stream: 1, Start: day, End: end(after[len(after)-1])}}
	if tl, _ := e.store.Timeline(1, day, day.Add(time.Hour)); !spansEqual(tl.Spans, want) {
		t.Fatalf("timeline once the card reads again %+v, want %+v", tl.Spans, want)
	}
	checkIndex(t, e)
}
