package recordings

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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

// TestCardFilledByOthersPausesAndResumes: another program fills the card;
// with nothing of its own to delete, recording pauses with an event, and
// resumes once there is room again.
func TestCardFilledByOthersPausesAndResumes(t *testing.T) {
	card := mountTmpfs(t, "4m")
	synctest.Test(t, func(t *testing.T) { cardFilledByOthers(t, card) })
}

func cardFilledByOthers(t *testing.T, card string) {
	e := newEnv(t, Options{Dir: filepath.Join(card, "rec"), Quota: Quota{Bytes: 1 << 30}})
	rec := &source{Start: day, FrameBytes: 3000}
	e.record(rec.fragments(1, 5*time.Second))
	filler := filepath.Join(card, "their-file")
	f, _ := os.Create(filler)
	f.Write(make([]byte, 4<<20)) // fills the card, error ignored
	f.Close()
	paused := false
	for _, fr := range rec.fragments(1, 10*time.Second) {
		if err := e.store.Append(fr); errors.Is(err, ErrPaused) {
			paused = true
			if !strings.Contains(err.Error(), "storage full") {
				t.Errorf("pause reason: %v", err)
			}
		}
	}
	if !paused || !e.hasEvent(EventPaused) || e.store.Stats().Paused != "storage full" {
		t.Fatalf("no pause on a full card: events %v stats %+v", e.eventKinds(), e.store.Stats())
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
	e.store.dropActive()
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
