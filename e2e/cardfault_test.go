package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"go.etcd.io/bbolt"

	"github.com/camd-project/camd/internal/faultfs"
	"github.com/camd-project/camd/media/whep"
	"github.com/camd-project/camd/storage/eventlog"
	"github.com/camd-project/camd/storage/volume"
)

// TestFaultFSServer is the FUSE server that faultfs runs in a child
// process (the e2e binary again).
func TestFaultFSServer(t *testing.T) { faultfs.Serve(t) }

// frameTimes is a viewer's video sink that notes when each frame came.
type frameTimes struct {
	mu sync.Mutex
	at []time.Time
}

func (f *frameTimes) Write(p []byte) (int, error) {
	if len(p) > 4 { // not the start code written before a frame
		f.mu.Lock()
		f.at = append(f.at, time.Now())
		f.mu.Unlock()
	}
	return len(p), nil
}

// between counts the frames that came in [from, to) and the longest wait
// for one there.
func (f *frameTimes) between(from, to time.Time) (n int, gap time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	prev := from
	for _, at := range f.at {
		if at.Before(from) || !at.Before(to) {
			continue
		}
		n++
		gap = max(gap, at.Sub(prev))
		prev = at
	}
	return n, max(gap, to.Sub(prev))
}

func (f *frameTimes) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.at)
}

// waitEvent waits until the event log holds an event of kind after since.
func waitEvent(t *testing.T, d *daemon, kind string, since time.Time, wait time.Duration) eventlog.Event {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		var evs []eventlog.Event
		d.api(t, "/api/v1/events?kind="+kind, &evs)
		for _, e := range evs {
			if e.Time.After(since) {
				return e
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s event within %v", kind, wait)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestFailingCardKeepsLiveView records onto an SD card that fails (a FUSE
// file system whose writes return EIO, or hang) while a WHEP viewer
// watches: live view goes on at full rate with no hole, camd tells the
// owner recording paused, and recording resumes once the card works.
func TestFailingCardKeepsLiveView(t *testing.T) {
	const failFor = 8 * time.Second // longer than the 5 s retry pause
	for _, c := range []struct {
		name  string
		fault faultfs.Fault
		// paused: the store sees errors and pauses recording.
		paused bool
	}{
		{"I/O errors", faultfs.Fault{Ops: faultfs.Write | faultfs.Fsync | faultfs.Truncate | faultfs.Create, Err: syscall.EIO}, true},
		// Writes that hang until the card is healed: no error to see.
		{"writes hang", faultfs.Fault{Ops: faultfs.Write | faultfs.Fsync, Delay: time.Minute}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			card := faultfs.MountTemp(t)
			cfg := recConfig(t, fmt.Sprintf("recording: {path: %s, volume_size: 4MiB, quota: 1GiB}\n", filepath.Join(card.Dir, "camd")))
			d := startDaemon(t, "--config", cfg)
			recorded(t, d, 2, time.Time{})

			frames := &frameTimes{}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			type result struct {
				st  whep.ViewStats
				err error
			}
			viewed := make(chan result, 1)
			go func() {
				st, err := whep.View(ctx, "https://"+d.addr+"/api/v1/whep", whep.ViewOptions{
					HTTPClient: insecureClient(), Header: d.viewHeader(t), Video: frames})
				viewed <- result{st, err}
			}()
			deadline := time.Now().Add(20 * time.Second)
			for frames.count() < 30 {
				if time.Now().After(deadline) {
					t.Fatal("the viewer got no frames")
				}
				time.Sleep(50 * time.Millisecond)
			}
			watchFrom := time.Now()
			time.Sleep(2 * time.Second)

			failAt := time.Now()
			if err := card.Set(c.fault); err != nil {
				t.Fatal(err)
			}
			if c.paused {
				ev := waitEvent(t, d, "recording.paused", failAt, failFor)
				if ev.Data["reason"] != "storage failing" {
					t.Errorf("paused event: %+v", ev)
				}
				var tl timelineAnswer
				if d.api(t, "/api/v1/recordings?from=-1h", &tl); tl.Status.Paused != "storage failing" {
					t.Errorf("status while the card fails: %+v", tl.Status)
				}
			}
			time.Sleep(time.Until(failAt.Add(failFor)))
			health(t, d)
			healAt := time.Now()
			// Whichever of the fault's operations camd tried first: a
			// volume that grows fails at its truncate, a new one at its
			// create, a commit at its write or fsync.
			var hits uint64
			for _, op := range []faultfs.Op{faultfs.Write, faultfs.Fsync, faultfs.Truncate, faultfs.Create} {
				if c.fault.Ops&op != 0 {
					hits += card.Hits(op)
				}
			}
			if err := card.Heal(); err != nil {
				t.Fatal(err)
			}
			if hits == 0 {
				t.Fatal("camd did not touch the card while it failed")
			}

			// Live view went on as before.
			before, _ := frames.between(watchFrom, failAt)
			during, gap := frames.between(failAt, healAt)
			rate := float64(before) / failAt.Sub(watchFrom).Seconds()
			t.Logf("live view: %.1f frames/s before, %.1f while the card failed, longest wait %v; %d card operations failed or hung",
				rate, float64(during)/healAt.Sub(failAt).Seconds(), gap.Round(time.Millisecond), hits)
			if float64(during) < 0.8*rate*healAt.Sub(failAt).Seconds() || gap > time.Second {
				t.Errorf("live view faltered while the card failed: %d frames in %v (%.1f/s before), a wait of %v",
					during, healAt.Sub(failAt), rate, gap)
			}

			// Recording resumes, leaving the time the card failed as a gap.
			if c.paused {
				waitEvent(t, d, "recording.resumed", healAt, 15*time.Second)
			}
			tl := recorded(t, d, 0, healAt.Add(3*time.Second))
			if tl.Status.Paused != "" {
				t.Errorf("still paused: %+v", tl.Status)
			}
			hole := false
			for _, g := range tl.Gaps {
				if !g.Start.After(failAt.Add(time.Second)) && !g.End.Before(healAt.Add(-time.Second)) {
					hole = true
				}
			}
			if c.paused && !hole {
				t.Errorf("the timeline shows no gap from %v to %v: %+v", failAt, healAt, tl)
			}
			var events []eventlog.Event
			d.api(t, "/api/v1/events?from="+failAt.Add(-time.Second).Format(time.RFC3339Nano), &events)
			t.Logf("events: %+v", events)
			t.Logf("timeline: %+v", tl.Spans)

			cancel()
			r := <-viewed
			if r.err != nil {
				t.Fatalf("viewer: %v", r.err)
			}
			t.Logf("viewer: %d frames, %d lost", r.st.FramesReceived, r.st.FramesLost)
			d.stop()
		})
	}
}

// badFragment picks the third fragment of a closed volume file and
// returns its start and the offset of a 4 KiB page in the middle of its
// data (not its first page, so the page walks at open do not read it).
func badFragment(t *testing.T, path string) (time.Time, int64) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var start time.Time
	var page int64
	err = db.View(func(tx *bbolt.Tx) error {
		frags := tx.Bucket([]byte("frags"))
		c := frags.Cursor()
		k, _ := c.First()
		for range 2 {
			k, _ = c.Next()
		}
		key, ok := volume.ParseKey(k)
		if !ok {
			return fmt.Errorf("key %x", k)
		}
		d := frags.Bucket(k).Get([]byte("m"))
		if len(d) < 3*4096 {
			return fmt.Errorf("fragment of %d bytes: too small", len(d))
		}
		start = time.Unix(0, key.Start)
		page = (int64(uintptr(unsafe.Pointer(&d[0]))-db.Info().Data) + int64(len(d)/2)) &^ 4095
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return start, page
}

// TestBadSectorKeepsLiveView: a page of a recording on the card can no
// longer be read, and the owner exports that stretch. The export fails,
// camd goes on serving live view.
func TestBadSectorKeepsLiveView(t *testing.T) {
	card := faultfs.MountTemp(t)
	cfg := recConfig(t, fmt.Sprintf("recording: {path: %s, volume_size: 1MiB, quota: 1GiB}\n", filepath.Join(card.Dir, "camd")))
	d := startDaemon(t, "--config", cfg)
	deadline := time.Now().Add(60 * time.Second)
	for {
		var tl timelineAnswer
		if d.api(t, "/api/v1/recordings?from=-1h", &tl); tl.Status.Volumes >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("camd did not fill a volume")
		}
		time.Sleep(500 * time.Millisecond)
	}
	vol := "vol-0000000000000001.db"
	start, page := badFragment(t, filepath.Join(card.Backing, "camd", vol))
	if err := card.Set(faultfs.Fault{Ops: faultfs.Read, Err: syscall.EIO, Files: vol, Offset: page, Length: 4096}); err != nil {
		t.Fatal(err)
	}
	q := "from=" + start.Format(time.RFC3339Nano) + "&to=" + start.Add(2*time.Second).Format(time.RFC3339Nano)
	req, _ := http.NewRequest("GET", "https://"+d.addr+"/api/v1/recordings/export?"+q, nil)
	req.Header.Set("Authorization", "Bearer "+d.token(t))
	if resp, err := insecureClient().Do(req); err == nil {
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		t.Logf("export over the bad page: %s, %d bytes, %v; %d reads failed", resp.Status, n, err, card.Hits(faultfs.Read))
	} else {
		t.Logf("export over the bad page: %v", err)
	}
	time.Sleep(time.Second)
	// The SIGBUS of the page in the volume's memory mapping must come
	// back as an error of the export, not kill camd.
	if l := d.log(); strings.Contains(l, "unexpected fault address") || strings.Contains(l, "fatal error: ") {
		if i := strings.Index(l, "fatal error"); i >= 0 {
			l = l[i:min(len(l), i+1200)]
		}
		t.Fatalf("exporting over an unreadable page of the card killed camd:\n%s", l)
	}
	if card.Hits(faultfs.Read) == 0 {
		t.Fatal("the export did not read the bad page")
	}
	health(t, d)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	st, err := whep.View(ctx, "https://"+d.addr+"/api/v1/whep", whep.ViewOptions{HTTPClient: insecureClient(), Header: d.viewHeader(t)})
	if err != nil || st.FramesReceived < 30 {
		t.Fatalf("live view after the failed export: %+v, %v", st, err)
	}
	d.stop()
}
