//go:build linux

package recordings

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/camd-project/camd/storage/card"
	"github.com/camd-project/camd/storage/card/cardtest"
)

// The tests in this file record onto a card that is a mounted file
// system (Options.Card): a tmpfs, or an ext4 image on a loop device,
// mounted at a directory on the machine's own disk that stands for the
// camera's flash.

// cardPoll is how often the store looks at the card in these tests.
const cardPoll = 20 * time.Millisecond

// cardEnv is a store whose volumes go to mnt/camd, a card, with its
// catalog on the device's own storage.
func cardEnv(t *testing.T, mnt string) (*env, *card.Card) {
	t.Helper()
	dir := filepath.Join(mnt, "camd")
	c := card.New(card.Options{Path: dir})
	return newEnv(t, Options{Dir: dir, Card: c, CardPoll: cardPoll, VolumeSize: 1 << 20, Quota: Quota{Bytes: 1 << 30}}), c
}

// waitEvent waits for the n-th event of kind (1 for the first).
func (e *env) waitEvent(kind string, n int) Event {
	e.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		if evs := e.eventsOf(kind); len(evs) >= n {
			return evs[n-1]
		}
		select {
		case <-e.notified:
		case <-timeout:
			e.t.Fatalf("no %s event (number %d) within 10 s: events %v", kind, n, e.eventKinds())
		}
	}
}

// openVolumes counts the volume files this process holds open on the
// file system whose device number is dev (another test's volumes may
// still be open elsewhere: a handle given up after a fault keeps its
// file until nothing reads it).
func openVolumes(t *testing.T, dev uint64) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc")
	}
	n := 0
	for _, fd := range fds {
		path := filepath.Join("/proc/self/fd", fd.Name())
		target, err := os.Readlink(path)
		if err != nil || !strings.Contains(target, "vol-") {
			continue
		}
		if fi, err := os.Stat(path); err == nil && uint64(fi.Sys().(*syscall.Stat_t).Dev) == dev {
			n++
		}
	}
	return n
}

// TestNoCardNoWrites: with no card at its mount point, the store writes
// nothing (not even its directory: it would be on the device's own
// storage), says "no card", and starts recording as soon as a card is
// mounted.
func TestNoCardNoWrites(t *testing.T) {
	mnt := t.TempDir()
	e, _ := cardEnv(t, mnt)
	if ev := e.waitEvent(EventPaused, 1); ev.Data["reason"] != "no card" || ev.Data["mounted"] != "false" {
		t.Fatalf("paused: %+v", ev)
	}
	rec := &source{Start: day, FrameBytes: 3000}
	for _, f := range rec.fragments(1, 3*time.Second) {
		if err := e.store.Append(f); !errors.Is(err, ErrPaused) || !strings.Contains(err.Error(), "no card") {
			t.Fatalf("append without a card: %v", err)
		}
	}
	if st := e.store.Stats(); st.Paused != "no card" || st.Card == nil || st.Card.Mounted || st.Card.Error == "" {
		t.Fatalf("stats: %+v %+v", st, st.Card)
	}
	if entries, _ := os.ReadDir(mnt); len(entries) != 0 {
		t.Fatalf("written to the device's own storage: %v", entries)
	}

	cardtest.Mount(t, "tmpfs", mnt, "-t", "tmpfs", "-o", "size=16m")
	mounted := time.Now()
	if ev := e.waitEvent(EventResumed, 1); ev.Data["mount_point"] != mnt {
		t.Errorf("resumed: %+v", ev)
	}
	t.Logf("recording resumed %v after the card was mounted (polled every %v)", time.Since(mounted).Round(time.Millisecond), cardPoll)
	e.record(rec.fragments(1, 3*time.Second))
	if _, err := os.Stat(filepath.Join(mnt, "camd")); err != nil {
		t.Fatal("nothing recorded on the card")
	}
	if st := e.store.Stats(); st.Card == nil || !st.Card.Mounted || st.Card.FSType != "tmpfs" || st.Card.CamdBytes == 0 || st.Card.TotalBytes != 16<<20 {
		t.Fatalf("card: %+v", st.Card)
	}
}

// TestCardUnmountedLazilyAndBack: a lazy unmount leaves the store's files
// open on a file system no longer at the mount point, where it could go
// on writing unseen. The store notices within a look, lets go of the
// card (so the unmount can finish), and when the same card is mounted
// again it records on, the time between as a gap, nothing lost.
func TestCardUnmountedLazilyAndBack(t *testing.T) {
	mnt := t.TempDir()
	dev := cardtest.Loop(t, 32<<20, "mkfs.ext4", "-F", "-q")
	cardtest.Mount(t, dev, mnt)
	e, _ := cardEnv(t, mnt)
	rec := &source{Start: day, FrameBytes: 3000}
	e.record(rec.fragments(1, 15*time.Second))
	c, err := e.store.Clip(1, day, day.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	before := e.store.Stats()
	fi, err := os.Stat(mnt)
	if err != nil {
		t.Fatal(err)
	}
	cardDev := uint64(fi.Sys().(*syscall.Stat_t).Dev)

	cardtest.Run(t, "umount", "-l", mnt)
	if ev := e.waitEvent(EventPaused, 1); ev.Data["reason"] != "no card" || ev.Data["present"] != "true" || ev.Data["device"] != dev {
		t.Fatalf("paused: %+v", ev)
	}
	// The event comes as the store lets go of the card: its files are
	// closed right after.
	for deadline := time.Now().Add(10 * time.Second); openVolumes(t, cardDev) != 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Errorf("%d volume files still open 10 s after the card went", openVolumes(t, cardDev))
			break
		}
	}
	if _, err := c.Read(0, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("a clip read from a card gone: %v", err)
	}
	rec.skip(5 * time.Second)
	if err := e.store.Append(rec.fragments(1, time.Second)[0]); !errors.Is(err, ErrPaused) {
		t.Fatalf("append without the card: %v", err)
	}

	cardtest.Mount(t, dev, mnt)
	e.waitEvent(EventResumed, 1)
	e.record(rec.fragments(1, 5*time.Second))
	if e.hasEvent(EventMissing) || e.hasEvent(EventQuarantined) {
		t.Fatalf("events: %v", e.eventKinds())
	}
	tl, _ := e.store.Timeline(1, day, day.Add(time.Hour))
	if len(tl.Spans) != 2 || !tl.Spans[0].Start.Equal(day) || tl.Spans[0].End.Before(before.Newest) {
		t.Fatalf("timeline %+v, before the card went %+v", tl.Spans, before)
	}
}

// TestCardReadOnlyCheckedAndFormatted: the kernel finds the card's file
// system damaged and makes it read-only. Recording pauses with an event
// that says so; Hold lets go of the card, a check repairs it and mounts
// it again, and recording resumes. Formatting it forgets its volumes,
// without reporting them missing.
func TestCardReadOnlyCheckedAndFormatted(t *testing.T) {
	mnt := t.TempDir()
	dev := cardtest.Loop(t, 32<<20, "mkfs.ext4", "-F", "-q")
	cardtest.Mount(t, dev, mnt, "-o", "errors=remount-ro")
	e, c := cardEnv(t, mnt)
	rec := &source{Start: day, FrameBytes: 3000}
	e.record(rec.fragments(1, 5*time.Second))

	cardtest.FailFS(t, dev)
	ev := e.waitEvent(EventPaused, 1)
	if ev.Data["reason"] != "storage read-only" || ev.Data["read_only"] != "true" || ev.Data["fs_type"] != "ext4" || ev.Data["device"] != dev {
		t.Fatalf("paused: %+v", ev)
	}
	if st := e.store.Stats(); st.Card == nil || !st.Card.ReadOnly || !st.Card.Present || st.Paused != "storage read-only" {
		t.Fatalf("stats: %+v", st.Card)
	}

	release, err := e.store.Hold("checking")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Hold("formatting"); !errors.Is(err, ErrBusy) {
		t.Errorf("held twice: %v", err)
	}
	if _, err := e.store.Clip(1, day, day.Add(time.Hour)); !errors.Is(err, ErrBusy) {
		t.Errorf("a clip while the card is checked: %v", err)
	}
	if st := e.store.Stats(); st.Card.Busy != "checking" || st.Paused != "card busy" {
		t.Errorf("stats while checking: %+v %+v", st, st.Card)
	}
	res, err := c.Check(context.Background(), nil, time.Minute)
	if err != nil || (res.Outcome != "repaired" && res.Outcome != "clean") || !res.Unmounted || !res.Mounted {
		t.Fatalf("check: %+v %v", res, err)
	}
	release(false)
	e.waitEvent(EventResumed, 1)
	e.record(rec.fragments(1, 5*time.Second))
	if e.hasEvent(EventMissing) || e.hasEvent(EventQuarantined) {
		t.Fatalf("events: %v", e.eventKinds())
	}

	release, err = e.store.Hold("formatting")
	if err != nil {
		t.Fatal(err)
	}
	if res, err := c.Format(context.Background(), []string{"mkfs.ext4", "-F", "-q"}, time.Minute); err != nil || res.Outcome != "formatted" {
		t.Fatalf("format: %+v %v", res, err)
	}
	release(true)
	e.waitEvent(EventResumed, 2)
	if st := e.store.Stats(); st.Volumes != 0 || e.hasEvent(EventMissing) {
		t.Fatalf("after the format: %+v, events %v", st, e.eventKinds())
	}
	e.record(rec.fragments(1, 5*time.Second))
	tl, _ := e.store.Timeline(1, day, day.Add(time.Hour))
	if len(tl.Spans) != 1 || tl.Recorded != 5*time.Second {
		t.Fatalf("timeline after the format: %+v", tl)
	}
}
