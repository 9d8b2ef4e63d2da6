package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/camd-project/camd/media/whep"
	"github.com/camd-project/camd/storage/card/cardtest"
)

// The tests in this file give camd a real card: an ext4 image on a loop
// device, or a tmpfs, mounted at a directory of the machine's disk that
// stands for the camera's own flash. This kernel has no FAT or exFAT
// driver: the FAT32 and exFAT commands are checked on image files by
// storage/card's tests, and what only a kernel mounting those can show
// (the vfat driver remounting a damaged card read-only, a card pulled
// out of a real slot) is for the qemu harness.

// cardState is the card part of GET /api/v1/recordings/status.
type cardState struct {
	Paused      string `json:"paused"`
	Volumes     int    `json:"volumes"`
	Deleted     int    `json:"volumes_deleted"`
	OthersBytes int64  `json:"others_bytes"`
	Card        struct {
		Present    bool   `json:"present"`
		Mounted    bool   `json:"mounted"`
		ReadOnly   bool   `json:"read_only"`
		Device     string `json:"device"`
		FSType     string `json:"fs_type"`
		TotalBytes int64  `json:"total_bytes"`
		CamdBytes  int64  `json:"camd_bytes"`
		Others     int64  `json:"others_bytes"`
		Error      string `json:"error"`
	} `json:"card"`
}

func (d *daemon) cardState(t testing.TB) cardState {
	t.Helper()
	var st cardState
	if code := d.api(t, "/api/v1/recordings/status", &st); code != http.StatusOK {
		t.Fatalf("status: %d", code)
	}
	return st
}

// noEvent fails the test if the event log holds an event of kind after
// since.
func noEvent(t *testing.T, d *daemon, kind string, since time.Time) {
	t.Helper()
	var evs []json.RawMessage
	if d.api(t, "/api/v1/events?kind="+kind+"&from="+since.Format(time.RFC3339Nano), &evs); len(evs) != 0 {
		t.Errorf("%s events: %s", kind, evs)
	}
}

// watchLive starts a WHEP viewer of live view; stop ends it and checks that
// its pictures never stopped for more than a second from the moment it
// got going.
func watchLive(t *testing.T, d *daemon) (stop func()) {
	t.Helper()
	frames := &frameTimes{}
	ctx, cancel := context.WithCancel(context.Background())
	viewed := make(chan error, 1)
	go func() {
		_, err := whep.View(ctx, "https://"+d.addr+"/api/v1/whep", whep.ViewOptions{
			HTTPClient: insecureClient(), Header: d.viewHeader(t), Video: frames})
		viewed <- err
	}()
	for deadline := time.Now().Add(20 * time.Second); frames.count() < 30; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			cancel()
			t.Fatal("the viewer got no frames")
		}
	}
	from := time.Now()
	return func() {
		t.Helper()
		to := time.Now()
		n, gap := frames.between(from, to)
		cancel()
		if err := <-viewed; err != nil {
			t.Errorf("viewer: %v", err)
		}
		t.Logf("live view: %d frames in %v, longest wait %v", n, to.Sub(from).Round(time.Second), gap.Round(time.Millisecond))
		if gap > time.Second {
			t.Errorf("live view stopped for %v", gap)
		}
	}
}

// TestCardMountedLaterAndUnmounted: camd starts with no card in: it says
// "no card" and writes nothing where the card goes. The card is mounted:
// camd records on it within 5 s. It is lazily unmounted (what an
// automounter does when a card is pulled): camd notices within 2 s,
// rather than writing on unseen to a file system no longer there, and
// records again when it is back.
func TestCardMountedLaterAndUnmounted(t *testing.T) {
	mnt := t.TempDir()
	dev := cardtest.Loop(t, 64<<20, "mkfs.ext4", "-F", "-q")
	start := time.Now()
	d := startDaemon(t, "--config", recConfig(t, fmt.Sprintf("recording: {path: %s, volume_size: 4MiB, quota: 1GiB}\n", filepath.Join(mnt, "camd"))))
	if ev := waitEvent(t, d, "recording.paused", start, 10*time.Second); ev.Data["reason"] != "no card" {
		t.Fatalf("paused: %+v", ev)
	}
	if st := d.cardState(t); st.Paused != "no card" || st.Card.Mounted || st.Card.Error == "" {
		t.Fatalf("status without a card: %+v", st)
	}
	if entries, _ := os.ReadDir(mnt); len(entries) != 0 {
		t.Fatalf("camd wrote to the device's own storage: %v", entries)
	}

	cardtest.Mount(t, dev, mnt)
	mounted := time.Now()
	resumed := waitEvent(t, d, "recording.resumed", mounted, 10*time.Second)
	tl := recorded(t, d, 1, mounted)
	first := tl.Spans[len(tl.Spans)-1].Start
	t.Logf("card mounted: recording resumed after %v, first fragment starts %v after the mount",
		resumed.Time.Sub(mounted).Round(time.Millisecond), first.Sub(mounted).Round(time.Millisecond))
	if first.Sub(mounted) > 5*time.Second {
		t.Errorf("recording started %v after the card was mounted", first.Sub(mounted))
	}
	if st := d.cardState(t); st.Card.Device != dev || st.Card.FSType != "ext4" || !st.Card.Present || st.Card.CamdBytes == 0 {
		t.Fatalf("status with the card: %+v", st)
	}

	recorded(t, d, 3, time.Time{})
	cardtest.Run(t, "umount", "-l", mnt)
	pulled := time.Now()
	ev := waitEvent(t, d, "recording.paused", pulled, 10*time.Second)
	t.Logf("card lazily unmounted: noticed after %v", ev.Time.Sub(pulled).Round(time.Millisecond))
	if ev.Data["reason"] != "no card" || ev.Time.Sub(pulled) > 2*time.Second {
		t.Errorf("paused %v after the unmount: %+v", ev.Time.Sub(pulled), ev)
	}

	cardtest.Mount(t, dev, mnt)
	back := time.Now()
	waitEvent(t, d, "recording.resumed", back, 10*time.Second)
	tl = recorded(t, d, 0, back.Add(2*time.Second))
	if len(tl.Spans) < 2 || tl.Status.Paused != "" {
		t.Fatalf("after the card came back: %+v", tl)
	}
	noEvent(t, d, "recording.volume_missing", time.Time{})
	d.stop()
}

// TestDamagedCardCheckedAndFormatted: the kernel finds the card's file
// system damaged and makes it read-only while camd records and a viewer
// watches. camd says so (an event, the status). The owner checks the
// card with camctl: camd lets go of it, unmounts it, e2fsck repairs it,
// camd mounts it again and records. Then the owner formats it, which
// needs the card's device named. Live view never stops.
func TestDamagedCardCheckedAndFormatted(t *testing.T) {
	mnt := t.TempDir()
	dev := cardtest.Loop(t, 64<<20, "mkfs.ext4", "-F", "-q")
	cardtest.Mount(t, dev, mnt, "-o", "errors=remount-ro")
	// This kernel mounts ext4, not FAT: the format makes ext4.
	d := startDaemon(t, "--config", recConfig(t, fmt.Sprintf(
		"recording: {path: %s, volume_size: 4MiB, quota: 1GiB, format_command: [mkfs.ext4, -F, -q]}\n", filepath.Join(mnt, "camd"))))
	recorded(t, d, 2, time.Time{})
	stop := watchLive(t, d)

	failed := time.Now()
	cardtest.FailFS(t, dev)
	ev := waitEvent(t, d, "recording.paused", failed, 10*time.Second)
	t.Logf("card made read-only by the kernel: noticed after %v", ev.Time.Sub(failed).Round(time.Millisecond))
	if ev.Data["reason"] != "storage read-only" || ev.Data["read_only"] != "true" || ev.Data["device"] != dev || ev.Data["fs_type"] != "ext4" {
		t.Fatalf("paused: %+v", ev)
	}
	if st := d.cardState(t); !st.Card.ReadOnly || !st.Card.Mounted || st.Paused != "storage read-only" {
		t.Fatalf("status of a read-only card: %+v", st)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	checked := time.Now()
	out, err := camctl(t, ctx, "storage", "check", "--store", d.store)
	if err != nil || !strings.Contains(out, dev+": ") || !strings.Contains(out, "e2fsck -p "+dev) || !strings.Contains(out, "mounted again (ext4)") {
		t.Fatalf("camctl storage check: %v\n%s", err, out)
	}
	t.Logf("camctl storage check:\n%s", out)
	waitEvent(t, d, "recording.resumed", checked, 10*time.Second)
	recorded(t, d, 0, time.Now().Add(2*time.Second))
	if st := d.cardState(t); st.Card.ReadOnly || st.Paused != "" {
		t.Fatalf("status after the check: %+v", st)
	}

	// A format needs the card named.
	var refusal struct{ Error string }
	if code := d.post(t, "/api/v1/storage/format", map[string]string{}, &refusal); code != http.StatusBadRequest || !strings.Contains(refusal.Error, "format "+dev) {
		t.Fatalf("format without a confirmation: %d %+v", code, refusal)
	}
	if _, err := camctl(t, ctx, "storage", "format", "--store", d.store); err == nil || !strings.Contains(err.Error(), "--card "+dev) {
		t.Fatalf("camctl storage format without --card: %v", err)
	}
	formatted := time.Now()
	if out, err := camctl(t, ctx, "storage", "format", "--store", d.store, "--card", dev); err != nil || !strings.Contains(out, "formatted") {
		t.Fatalf("camctl storage format: %v\n%s", err, out)
	}
	waitEvent(t, d, "recording.resumed", formatted, 10*time.Second)
	var tl timelineAnswer
	d.api(t, "/api/v1/recordings?from=-1h&to="+formatted.Format(time.RFC3339Nano), &tl)
	if len(tl.Spans) != 0 {
		t.Errorf("recordings from before the format: %+v", tl.Spans)
	}
	recorded(t, d, 2, formatted)
	stop()
	noEvent(t, d, "recording.volume_missing", time.Time{})
	d.stop()
}

// TestCardFilledByAnotherProgram: another program fills the card camd
// records on. camd deletes its own oldest volumes and records on, never
// pausing while it has any, and the status says how much the other
// program holds.
func TestCardFilledByAnotherProgram(t *testing.T) {
	mnt := t.TempDir()
	cardtest.Mount(t, "tmpfs", mnt, "-t", "tmpfs", "-o", "size=24m")
	d := startDaemon(t, "--config", recConfig(t, fmt.Sprintf("recording: {path: %s, volume_size: 1MiB, quota: 100%%}\n", filepath.Join(mnt, "camd"))))
	for deadline := time.Now().Add(60 * time.Second); d.cardState(t).Volumes < 4; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("camd made %d volumes in a minute", d.cardState(t).Volumes)
		}
	}
	before := d.cardState(t)
	filled := time.Now()
	theirs := filepath.Join(mnt, "their-file")
	f, err := os.Create(theirs)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !strings.Contains(err.Error(), syscall.ENOSPC.Error()) {
				t.Fatal(err)
			}
			break
		}
	}
	f.Close()
	fi, _ := os.Stat(theirs)
	tl := recorded(t, d, 0, time.Now().Add(5*time.Second))
	// Others' bytes are what is used less camd's files, both read while
	// camd writes: within a few pages.
	st := d.cardState(t)
	t.Logf("another program wrote %d MiB: camd had %d volumes, deleted %d of its own since, has %d; status says others hold %d MiB",
		fi.Size()>>20, before.Volumes, st.Deleted-before.Deleted, st.Volumes, st.Card.Others>>20)
	if tl.Status.Paused != "" || st.Deleted <= before.Deleted || st.Card.Others < fi.Size()*9/10 || st.Card.Others > st.Card.TotalBytes {
		t.Errorf("after the card filled: %+v, timeline status %+v", st, tl.Status)
	}
	noEvent(t, d, "recording.paused", filled) // with volumes of its own to delete
	d.stop()
}
