package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/camd-project/camd/storage/eventlog"
)

// post makes an authorized POST with the owner's credential and a JSON
// body, and decodes the answer into out.
func (d *daemon) post(t testing.TB, path string, body, out any) int {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", "https://"+d.addr+path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+d.token(t))
	req.Header.Set("Content-Type", "application/json")
	resp, err := insecureClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ = io.ReadAll(resp.Body)
	if out != nil {
		json.Unmarshal(b, out)
	}
	return resp.StatusCode
}

// ownerData is what an owner left on the camera: a recorded range, saved
// snapshots (one by hand, one of a motion event).
type ownerData struct {
	from, to  time.Time
	snapshots []string
}

// leaveData records, saves a snapshot and makes a motion event with its
// snapshot, as an owner using the camera does.
func leaveData(t *testing.T, d *daemon) ownerData {
	t.Helper()
	tl := recorded(t, d, 3, time.Time{})
	o := ownerData{from: tl.Spans[0].Start, to: tl.Spans[len(tl.Spans)-1].End}
	var snap struct{ ID string }
	if code := d.post(t, "/api/v1/snapshots", nil, &snap); code != http.StatusCreated {
		t.Fatalf("save a snapshot: %d", code)
	}
	if code := d.post(t, "/api/v1/motion", map[string]any{"cause": "doorbell", "seconds": 0.5}, nil); code != http.StatusOK {
		t.Fatalf("motion: %d", code)
	}
	ev := waitEvent(t, d, "motion", time.Time{}, 10*time.Second)
	if ev.Snapshot == "" {
		t.Fatalf("the motion event has no snapshot: %+v", ev)
	}
	o.snapshots = []string{snap.ID, ev.Snapshot}
	return o
}

// seesNothingOf checks, through every route, that the owner paired with
// d sees nothing of o: the timeline and the export of its range, the
// snapshots listed and fetched by their IDs, the events.
func seesNothingOf(t *testing.T, d *daemon, o ownerData) {
	t.Helper()
	rng := "from=" + o.from.Format(time.RFC3339Nano) + "&to=" + o.to.Format(time.RFC3339Nano)
	var tl timelineAnswer
	if code := d.api(t, "/api/v1/recordings?"+rng, &tl); code != 200 || len(tl.Spans) != 0 || tl.Recorded != 0 {
		t.Errorf("timeline of the old range: %d %+v", code, tl)
	}
	if code := d.api(t, "/api/v1/recordings/export?"+rng, nil); code != http.StatusNotFound {
		t.Errorf("export of the old range: %d", code)
	}
	var list []json.RawMessage
	if code := d.api(t, "/api/v1/snapshots", &list); code != 200 || len(list) != 0 {
		t.Errorf("snapshots: %d %s", code, list)
	}
	for _, id := range o.snapshots {
		if code := d.api(t, "/api/v1/snapshots/"+id, nil); code != http.StatusNotFound {
			t.Errorf("old snapshot %s: %d", id, code)
		}
	}
	var evs []eventlog.Event
	d.api(t, "/api/v1/events?from=1970-01-01T00:00:01Z&limit=1000", &evs)
	for _, e := range evs {
		if e.Kind == "motion" || !e.Time.After(o.to) {
			t.Errorf("an old event: %+v", e)
		}
	}
}

// bornBefore lists the files and directories under dir created before
// t0 (statx birth time), relative to dir.
func bornBefore(t *testing.T, dir string, t0 time.Time) []string {
	t.Helper()
	var old []string
	filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		var st unix.Statx_t
		if err := unix.Statx(unix.AT_FDCWD, p, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_BTIME, &st); err != nil || st.Mask&unix.STATX_BTIME == 0 {
			t.Skipf("no birth time on this file system: %v", err)
		}
		if time.Unix(st.Btime.Sec, int64(st.Btime.Nsec)).Before(t0) {
			rel, _ := filepath.Rel(dir, p)
			old = append(old, rel)
		}
		return nil
	})
	return old
}

// resetCamera is a camera whose configuration file, in its data
// directory, puts the recordings on a card (recording.path outside the
// data directory; a directory stands for the card: it is not a mount),
// and which once moved damaged files aside.
func resetCamera(t *testing.T) (data, card, config string) {
	t.Helper()
	data, card = t.TempDir(), filepath.Join(t.TempDir(), "camd")
	config = filepath.Join(data, "camd.yaml")
	os.WriteFile(config, []byte("data: "+data+"\nvideo: {width: 640, height: 480}\nrecording: {path: "+card+", require_mount: false}\n"), 0o600)
	for _, f := range []string{"catalog.db.damaged-20250101T000000Z", "snapshots.db.damaged-20250101T000000Z"} {
		os.WriteFile(filepath.Join(data, f), []byte("the old owner's\n"), 0o600)
	}
	return data, card, config
}

// TestFactoryResetErasesEverything resets a camera that recorded onto a
// card, saved snapshots, logged motion and once moved damaged files
// aside; online (`camd factory-reset` while camd runs: it erases once it
// has closed its files, and starts again) and offline (camd stopped:
// `camd factory-reset --config` reads where the card is as `camd run`
// does). Afterwards nothing of the old data directory survives but the
// configuration file, the card holds no old volume, and the new owner
// sees nothing of the old one's through the API. Before, the reset left
// the volumes, snapshots.db and the files moved aside: the next start
// adopted the volumes again, and the new owner could list, export and
// play the old owner's recordings.
func TestFactoryResetErasesEverything(t *testing.T) {
	need(t, "ffmpeg")
	t.Run("online", func(t *testing.T) {
		data, card, config := resetCamera(t)
		d := startAt(t, data, "", "--config", config)
		o := leaveData(t, d)
		resetAt := time.Now()
		if out := camd(t, "factory-reset", "--data", data, "--yes"); !strings.Contains(out, "factory reset") {
			t.Fatalf("factory-reset printed %q", out)
		}
		waitLog(t, d, "factory reset done")
		for deadline := time.Now().Add(15 * time.Second); strings.Count(d.log(), `msg="camd: serving"`) < 2; time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("camd did not come back after the reset")
			}
		}
		m := servingLine.FindAllStringSubmatch(d.log(), -1)
		d.addr = m[len(m)-1][1]
		d.pair(t) // pairing is open again, for a new owner
		seesNothingOf(t, d, o)
		d.stop()
		if old := bornBefore(t, data, resetAt); !slices.Equal(old, []string{"camd.yaml"}) {
			t.Errorf("survived the reset in the data directory: %v", old)
		}
		if old := bornBefore(t, card, resetAt); len(old) != 0 {
			t.Errorf("survived the reset on the card: %v", old)
		}
	})
	t.Run("offline", func(t *testing.T) {
		data, card, config := resetCamera(t)
		d := startAt(t, data, "", "--config", config)
		o := leaveData(t, d)
		d.stop()
		if out := camd(t, "factory-reset", "--config", config, "--yes"); !strings.Contains(out, "factory reset done") {
			t.Fatalf("factory-reset printed %q", out)
		}
		if left := treeOf(t, data); !slices.Equal(left, []string{"camd.yaml"}) {
			t.Errorf("left in the data directory: %v", left)
		}
		if left := treeOf(t, card); len(left) != 0 {
			t.Errorf("left on the card: %v", left)
		}
		d = startAt(t, data, "", "--config", config) // pairs a new owner
		seesNothingOf(t, d, o)
	})
}

// treeOf lists everything under dir, relative to it.
func treeOf(t *testing.T, dir string) []string {
	t.Helper()
	var all []string
	err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err == nil && p != dir {
			rel, _ := filepath.Rel(dir, p)
			all = append(all, rel)
		}
		return err
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return all
}
