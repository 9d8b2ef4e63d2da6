package recordings

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/camd-project/camd/internal/testenv"
)

// The tests in this file run the store on a tmpfs, the stand-in for an SD
// card that fills up, turns read-only or goes away. Those that wait for
// the store's retry, 5 s after a write error, run in a synctest bubble,
// whose fake clock time.Sleep(retryPause) moves there at once.

// retryPause is the store's default Options.RetryPause.
const retryPause = 5 * time.Second

// mountTmpfs mounts a small tmpfs. It needs root; the test is skipped
// without it (or fails, with CAMD_REQUIRE_TOOLS set).
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	testenv.Root(t, "mounting a tmpfs")
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", dir).CombinedOutput()
	testenv.Need(t, err == nil, "cannot mount a tmpfs: %v %s", err, out)
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

func remount(t *testing.T, dir, opt string) {
	t.Helper()
	if out, err := exec.Command("mount", "-o", "remount,"+opt, dir).CombinedOutput(); err != nil {
		t.Fatalf("remount %s: %v %s", opt, err, out)
	}
}

// TestDiskFillsDuringWrites: the card is smaller than the quota, so the
// file system fills before the accounting says so; the store makes room
// by deleting its oldest volume and goes on.
func TestDiskFillsDuringWrites(t *testing.T) {
	card := mountTmpfs(t, "8m")
	e := newEnv(t, Options{Dir: filepath.Join(card, "rec"), VolumeSize: 1 << 20, Quota: Quota{Bytes: 1 << 30}})
	rec := &source{Audio: true, Start: day, FrameBytes: 4000}
	var last Fragment
	failures := 0
	for range 60 {
		for _, f := range rec.fragments(1, 5*time.Second) {
			if err := e.store.Append(f); err != nil {
				failures++
				continue
			}
			last = f
		}
	}
	if failures > 2 {
		t.Fatalf("%d appends failed on a full card; events %v", failures, e.eventKinds())
	}
	st := e.store.Stats()
	if st.Deleted == 0 || !st.Newest.Equal(last.Start.Add(last.Duration)) {
		t.Fatalf("stats %+v; last fragment ended %v", st, last.Start.Add(last.Duration))
	}
}

// fill writes to the file at path until the card is full: another
// program that wants all the room there is.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	for n := 4096; n > 0; n /= 2 { // the last pages
		for {
			if _, err := f.Write(chunk[:n]); err != nil {
				break
			}
		}
	}
}

// TestFullCardDeletesCamdsOwnFirst: another program fills the card,
// at every point of the making of a volume (here a volume holds about
// ten fragments). The store deletes its own oldest volumes to go on,
// whichever operation the card refuses (a fragment's commit, making the
// next volume), and recording never pauses while anything of its own is
// left. Before, an out-of-space error while making a volume deleted
// nothing: recording paused with a card full of camd's volumes, and
// each new volume cost a retry pause.
func TestFullCardDeletesCamdsOwnFirst(t *testing.T) {
	for at := range 12 {
		t.Run(fmt.Sprint("after ", at), func(t *testing.T) {
			card := mountTmpfs(t, "16m")
			e := newEnv(t, Options{Dir: filepath.Join(card, "rec"), VolumeSize: 1 << 20, Quota: Quota{Bytes: 1 << 30}})
			rec := &source{Start: day, FrameBytes: 3000}
			e.record(rec.fragments(1, time.Duration(40+at)*time.Second))
			before := e.store.Stats()
			fill(t, filepath.Join(card, "their-file"))
			var last Fragment
			for _, f := range rec.fragments(1, 30*time.Second) {
				if err := e.store.Append(f); err != nil {
					t.Fatalf("append at %v on a card others filled, with %d volumes of camd's: %v; events %v",
						f.Start, e.store.Stats().Volumes, err, e.eventKinds())
				}
				last = f
			}
			st := e.store.Stats()
			if st.Paused != "" || st.Deleted <= before.Deleted || !st.Newest.Equal(last.Start.Add(last.Duration)) {
				t.Fatalf("before %+v\nafter %+v", before, st)
			}
		})
	}
}

// TestCardFilledByOthersPausesAndResumes: another program fills a card
// that holds nothing of camd's (the owner deleted the recordings): with
// nothing of its own to delete, recording pauses with an event that
// says who holds the room, and resumes once there is room again. (While
// it holds volumes, the store deletes them instead:
// TestFullCardDeletesCamdsOwnFirst.)
func TestCardFilledByOthersPausesAndResumes(t *testing.T) {
	card := mountTmpfs(t, "8m")
	synctest.Test(t, func(t *testing.T) { cardFilledByOthers(t, card) })
}

func cardFilledByOthers(t *testing.T, card string) {
	e := newEnv(t, Options{Dir: filepath.Join(card, "rec"), VolumeSize: 1 << 20, Quota: Quota{Bytes: 1 << 30}})
	rec := &source{Start: day, FrameBytes: 3000}
	e.record(rec.fragments(1, 20*time.Second))
	if _, err := e.store.Delete(time.Time{}); err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(card, "their-file")
	fill(t, filler)
	paused := false
	for _, fr := range rec.fragments(1, 10*time.Second) {
		if err := e.store.Append(fr); errors.Is(err, ErrPaused) {
			paused = true
			if !strings.Contains(err.Error(), "storage full") {
				t.Errorf("pause reason: %v", err)
			}
		}
	}
	st := e.store.Stats()
	if !paused || st.Paused != "storage full" || st.Volumes > 1 {
		t.Fatalf("no pause on a full card, or with volumes left: events %v stats %+v", e.eventKinds(), st)
	}
	ev := e.eventsOf(EventPaused)[0]
	theirs, _ := strconv.ParseInt(ev.Data["others_bytes"], 10, 64)
	total, _ := strconv.ParseInt(ev.Data["total_bytes"], 10, 64)
	fi, _ := os.Stat(filler)
	if total != 8<<20 || theirs < fi.Size() || theirs > total || ev.Data["camd_bytes"] == "" || ev.Data["free_bytes"] == "" {
		t.Errorf("paused event: %v; their file is %d bytes", ev.Data, fi.Size())
	}
	os.Remove(filler)
	// The store tries the card again only once the retry pause is over.
	if err := e.store.Append(rec.fragments(1, time.Second)[0]); !errors.Is(err, ErrPaused) {
		t.Fatalf("append before the retry: %v", err)
	}
	time.Sleep(retryPause)
	resumed := false
	for _, fr := range rec.fragments(1, 5*time.Second) {
		if err := e.store.Append(fr); err == nil {
			resumed = true
		}
	}
	if !resumed || !e.hasEvent(EventResumed) || e.store.Paused() != nil {
		t.Fatalf("did not resume: events %v", e.eventKinds())
	}
}

func TestReadOnlyCardPausesAndResumes(t *testing.T) {
	card := mountTmpfs(t, "16m")
	synctest.Test(t, func(t *testing.T) { readOnlyCard(t, card) })
}

func readOnlyCard(t *testing.T, card string) {
	e := newEnv(t, Options{Dir: filepath.Join(card, "rec"), Quota: Quota{Bytes: 1 << 30}})
	rec := &source{Start: day, FrameBytes: 3000}
	e.record(rec.fragments(1, 5*time.Second))
	// The kernel remounts a failing card read-only after the write errors
	// that made the store let go of its volume: stand in for both.
	e.store.writeMu.Lock()
	e.store.dropActive(1)
	e.store.writeMu.Unlock()
	remount(t, card, "ro")
	failed := 0
	for _, fr := range rec.fragments(1, 5*time.Second) {
		if err := e.store.Append(fr); err != nil {
			failed++
		}
	}
	if failed == 0 || e.store.Stats().Paused != "storage read-only" {
		t.Fatalf("read-only card: %d failures, stats %+v, events %v", failed, e.store.Stats(), e.eventKinds())
	}
	remount(t, card, "rw")
	time.Sleep(retryPause)
	e.record(rec.fragments(1, 5*time.Second)[1:])
	if !e.hasEvent(EventResumed) {
		t.Fatalf("events: %v", e.eventKinds())
	}
	tl, _ := e.store.Timeline(1, day, day.Add(time.Hour))
	if len(tl.Spans) != 2 {
		t.Fatalf("want the paused time as a gap: %+v\nevents %+v\nstats %+v", tl.Spans, e.events, e.store.Stats())
	}
}

func TestMissingCardPausesAndResumes(t *testing.T) {
	card := mountTmpfs(t, "16m")
	synctest.Test(t, func(t *testing.T) { missingCard(t, card) })
}

func missingCard(t *testing.T, card string) {
	e := newEnv(t, Options{Dir: filepath.Join(card, "rec"), VolumeSize: 1 << 20, Quota: Quota{Bytes: 1 << 30}})
	rec := &source{Start: day, FrameBytes: 3000}
	e.record(rec.fragments(1, 5*time.Second))
	// The card goes away: its mount point is an empty directory.
	if out, err := exec.Command("umount", "-l", card).CombinedOutput(); err != nil {
		t.Fatalf("umount: %v %s", err, out)
	}
	failed := 0
	for _, fr := range rec.fragments(1, 30*time.Second) { // enough to need a new volume
		if err := e.store.Append(fr); err != nil {
			failed++
		}
	}
	if failed == 0 || e.store.Stats().Paused != "storage missing" {
		t.Fatalf("missing card: %d failures, stats %+v, events %v", failed, e.store.Stats(), e.eventKinds())
	}
	if _, err := os.Stat(filepath.Join(card, "rec")); err == nil {
		t.Fatal("the store recreated its directory on the bare mount point")
	}
	// A card is back (formatted, with the directory).
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", card).CombinedOutput(); err != nil {
		t.Fatalf("mount: %v %s", err, out)
	}
	os.MkdirAll(filepath.Join(card, "rec"), 0o700)
	time.Sleep(retryPause)
	e.record(rec.fragments(1, 5*time.Second)[1:])
	if !e.hasEvent(EventResumed) {
		t.Fatalf("events: %v", e.eventKinds())
	}
}
