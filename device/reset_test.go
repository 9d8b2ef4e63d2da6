package device

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/camd-project/camd/device/api"
	"github.com/camd-project/camd/device/crash"
	"github.com/camd-project/camd/internal/testenv"
	"github.com/camd-project/camd/media/h264/h264test"
	"github.com/camd-project/camd/storage/eventlog"
	"github.com/camd-project/camd/storage/recordings"
	"github.com/camd-project/camd/storage/snapshots"
)

// snapshotCommand takes a passthrough stream's snapshots with ffmpeg,
// decoding the newest keyframe camd gives it.
var snapshotCommand = []string{"ffmpeg", "-loglevel", "error", "-f", "h264", "-i", "-", "-frames:v", "1", "-f", "mjpeg", "-"}

// startRun runs d until the test ends; Run's error arrives on the
// channel.
func startRun(t *testing.T, d *Daemon) <-chan error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		default:
		}
	})
	return done
}

// treeOf lists every file and directory under dir, relative to it.
func treeOf(t *testing.T, dir string) []string {
	t.Helper()
	var all []string
	err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			rel, _ := filepath.Rel(dir, p)
			all = append(all, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return all
}

// oldOwner is what the owner before a reset had: recordings of a range,
// a saved snapshot, a motion event with its snapshot.
type oldOwner struct {
	from, to  time.Time
	snapshots []string
}

// useAsOwner records, saves a snapshot and makes a motion event with its
// snapshot, as an owner does.
func useAsOwner(t *testing.T, d *Daemon) oldOwner {
	t.Helper()
	token := owner(t, d)
	tl := waitRecorded(t, d, token, 2)
	var o oldOwner
	o.from, o.to = tl.Spans[0].Start, tl.Spans[0].End
	code, b := call(t, d, "POST", "/api/v1/snapshots", token, nil)
	var snap snapshots.Snapshot
	if json.Unmarshal(b, &snap); code != http.StatusCreated {
		t.Fatalf("save a snapshot: %d %s", code, b)
	}
	ev := motionEvent(t, d, token, "doorbell", func(e eventlog.Event) bool { return e.Snapshot != "" && !e.End.IsZero() })
	o.snapshots = []string{snap.ID, ev.Snapshot}
	return o
}

// seesNothingOf checks, through every route, that the owner of d sees
// nothing of o.
func seesNothingOf(t *testing.T, d *Daemon, token string, o oldOwner) {
	t.Helper()
	rng := "from=" + o.from.Format(time.RFC3339Nano) + "&to=" + o.to.Format(time.RFC3339Nano)
	code, b := call(t, d, "GET", "/api/v1/recordings?"+rng, token, nil)
	var tl api.TimelineAnswer
	if json.Unmarshal(b, &tl); code != 200 || len(tl.Spans) != 0 || tl.Recorded != 0 {
		t.Errorf("timeline of the old range: %d %s", code, b)
	}
	if code, b := call(t, d, "GET", "/api/v1/recordings/export?"+rng, token, nil); code != http.StatusNotFound {
		t.Errorf("export of the old range: %d %.200s", code, b)
	}
	code, b = call(t, d, "GET", "/api/v1/snapshots", token, nil)
	var list []snapshots.Snapshot
	if json.Unmarshal(b, &list); code != 200 || len(list) != 0 {
		t.Errorf("snapshots: %d %s", code, b)
	}
	for _, id := range o.snapshots {
		if code, _ := call(t, d, "GET", "/api/v1/snapshots/"+id, token, nil); code != http.StatusNotFound {
			t.Errorf("old snapshot %s: %d", id, code)
		}
	}
	code, b = call(t, d, "GET", "/api/v1/events?from=1970-01-01T00:00:01Z", token, nil)
	var evs []eventlog.Event
	if json.Unmarshal(b, &evs); code != 200 {
		t.Errorf("events: %d %s", code, b)
	}
	for _, e := range evs {
		if e.Kind == "motion" || !e.Time.After(o.to) {
			t.Errorf("an old event: %+v", e)
		}
	}
}

// TestFactoryResetErasesEverything resets a camera that recorded (on a
// card: recording.path outside the data directory), saved snapshots,
// logged motion with its snapshot and once moved damaged files aside,
// while an export is being read, through the two online routes: the
// control socket (`camd factory-reset`) and the pair button held 10 s
// (TestLongPressFactoryResets checks that the press requests it). Run
// closes every file first (the export's reads fail from then on), then
// erases: nothing of the data directory is left but the configuration
// file and a file that is not camd's, no volume is left on the card, and
// the process holds no old file open. A new owner of the camera sees
// nothing of the old one's through any route. Before, the reset erased
// the keys and the catalog only: the volumes were adopted again at the
// next start (the old timeline and exports came back), and snapshots.db
// and what was moved aside survived.
func TestFactoryResetErasesEverything(t *testing.T) {
	h264test.NeedFFmpeg(t)
	for _, route := range []string{"control socket", "pair button"} {
		t.Run(route, func(t *testing.T) {
			cfg := recordingConfig(t, func(c *Config) {
				c.Recording.Path = filepath.Join(t.TempDir(), "card", "camd")
				// A directory stands for the card: not a mount.
				c.Recording.RequireMount = new(false)
				c.Passthrough.SnapshotCommand = snapshotCommand
			})
			// What is not camd's stays: the configuration file, and a
			// file of someone else's (a mistaken --data loses nothing).
			for _, f := range []string{"camd.yaml", "notes.txt"} {
				os.WriteFile(filepath.Join(cfg.Data, f), []byte("kept\n"), 0o600)
			}
			// What an older start moved aside, and a write a crash cut.
			for _, f := range []string{"catalog.db.damaged-20250101T000000Z", "snapshots.db.damaged-20250101T000000Z", ".tls.key.1234"} {
				os.WriteFile(filepath.Join(cfg.Data, f), []byte("old owner's\n"), 0o600)
			}
			os.MkdirAll(filepath.Join(cfg.Recording.Path, "quarantine"), 0o700)
			os.WriteFile(filepath.Join(cfg.Recording.Path, "quarantine", "vol-0000000000000009.db.20250101T000000Z"), []byte("old"), 0o600)
			// A crash of the run before: New keeps a report of it.
			os.WriteFile(filepath.Join(cfg.Data, crash.TraceFile), []byte("{\"version\":\"old\"}\nfatal error: old owner's crash\n"), 0o600)

			d, err := New(cfg, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			if reps, _ := d.crashes.List(); len(reps) != 1 {
				t.Fatalf("crash reports: %v", reps)
			}
			if _, err := d.metrics.Create(); err != nil {
				t.Fatal(err)
			}
			done := startRun(t, d)
			oldFP := d.id.Fingerprint
			o := useAsOwner(t, d)
			// An export in flight when the reset comes.
			clip, err := d.recording.store.Clip(stream, o.from, o.to)
			if err != nil {
				t.Fatal(err)
			}
			defer clip.Close()
			if _, err := clip.Read(0, nil); err != nil {
				t.Fatal(err)
			}

			switch route {
			case "control socket":
				if out, err := Control(cfg.Data, "POST", "/factory-reset"); err != nil || !strings.Contains(out, "factory reset") {
					t.Fatalf("control socket: %q %v", out, err)
				}
			case "pair button":
				d.board.events.resetHold()
			}
			if err := <-done; !errors.Is(err, ErrFactoryReset) {
				t.Fatalf("Run: %v", err)
			}
			if _, err := clip.Read(1, nil); !errors.Is(err, recordings.ErrClosed) {
				t.Errorf("the export read on after the reset: %v", err)
			}
			if open := testenv.OpenFiles(t, cfg.Data, cfg.Recording.Path); len(open) != 0 {
				t.Errorf("held open after the reset: %v", open)
			}
			if left := treeOf(t, cfg.Data); !slices.Equal(left, []string{"camd.yaml", "notes.txt"}) {
				t.Errorf("left in the data directory: %v", left)
			}
			if left := treeOf(t, cfg.Recording.Path); len(left) != 0 {
				t.Errorf("left on the card: %v", left)
			}

			// The camera starts again as a new device, open for a new
			// owner, who sees nothing of the old one's.
			d2, err := New(cfg, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			startRun(t, d2)
			if d2.Paired() || d2.id.Fingerprint == oldFP {
				t.Fatalf("after the reset: paired %v, same certificate %v", d2.Paired(), d2.id.Fingerprint == oldFP)
			}
			seesNothingOf(t, d2, owner(t, d2), o)
		})
	}
}

// TestInterruptedFactoryResetIsFinished: a reset that stopped half way
// (a power cut before it erased anything) leaves its mark; the next
// start finishes it before it opens anything, so the camera never starts
// with its former owner's data. `camd run --boot` starts camd to finish
// it even though the former owner had turned auto start off.
func TestInterruptedFactoryResetIsFinished(t *testing.T) {
	cfg := passthroughConfig(t)
	d, stop := runningAt(t, cfg)
	token := owner(t, d)
	if code, b := call(t, d, "PATCH", "/api/v1/settings", token, map[string]any{"auto_start": false}); code != 200 {
		t.Fatalf("settings: %d %s", code, b)
	}
	oldFP := d.id.Fingerprint
	stop()
	quiet := slog.New(slog.DiscardHandler)
	if on, err := AutoStart(cfg, quiet); err != nil || on {
		t.Fatalf("auto start: %v %v", on, err)
	}
	os.WriteFile(filepath.Join(cfg.Data, resetPending), nil, 0o600)
	if on, err := AutoStart(cfg, quiet); err != nil || !on {
		t.Fatalf("auto start with a reset to finish: %v %v", on, err)
	}
	d2, err := New(cfg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	if d2.Paired() || d2.id.Fingerprint == oldFP || resetIsPending(cfg) {
		t.Fatalf("the interrupted reset was not finished: paired %v, same certificate %v, mark left %v",
			d2.Paired(), d2.id.Fingerprint == oldFP, resetIsPending(cfg))
	}
}

// TestEventSaysItsSnapshotIsGone: a motion event whose snapshot an owner
// deleted says so when it is read, instead of pointing at nothing.
func TestEventSaysItsSnapshotIsGone(t *testing.T) {
	h264test.NeedFFmpeg(t)
	d, token := recordingDaemon(t, func(c *Config) { c.Passthrough.SnapshotCommand = snapshotCommand })
	waitRecorded(t, d, token, 1)
	ev := motionEvent(t, d, token, "pir", func(e eventlog.Event) bool { return e.Snapshot != "" })
	if ev.SnapshotMissing {
		t.Fatalf("a snapshot that is there is missing: %+v", ev)
	}
	if code, b := call(t, d, "DELETE", "/api/v1/snapshots/"+ev.Snapshot, token, nil); code != http.StatusNoContent {
		t.Fatalf("delete: %d %s", code, b)
	}
	_, b := call(t, d, "GET", "/api/v1/events?kind=motion", token, nil)
	var evs []eventlog.Event
	json.Unmarshal(b, &evs)
	if len(evs) != 1 || evs[0].Snapshot != ev.Snapshot || !evs[0].SnapshotMissing {
		t.Fatalf("the event of a deleted snapshot: %s", b)
	}
}

// TestFactoryResetRefusesARunningCamd: with its control socket gone, a
// running camd is still found by its catalog's lock; an offline reset
// would unlink files it keeps open and serves, so it refuses.
func TestFactoryResetRefusesARunningCamd(t *testing.T) {
	cfg := passthroughConfig(t)
	runningAt(t, cfg)
	os.Remove(filepath.Join(cfg.Data, ControlSocket))
	if err := FactoryReset(cfg, slog.New(slog.DiscardHandler)); !errors.Is(err, ErrRunning) {
		t.Fatalf("reset under a running camd: %v", err)
	}
	for _, f := range []string{catalogFile, tlsKey, resetPending} {
		if _, err := os.Stat(filepath.Join(cfg.Data, f)); (err == nil) != (f != resetPending) {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// TestFactoryResetWithTheCardOut: the card is out of the camera when the
// owner resets it. The reset leaves a mark; once the card is back, the
// new owner sees none of the old recordings and they are gone from the
// card before the store lists them. Before, the store adopted them as
// volumes missing from the (new) catalog and showed them to the new
// owner.
func TestFactoryResetWithTheCardOut(t *testing.T) {
	cfg := recordingConfig(t, func(c *Config) {
		c.Recording.Path = filepath.Join(t.TempDir(), "card", "camd")
		c.Recording.RequireMount = new(false) // a directory stands for the card
	})
	d, stop := runningAt(t, cfg)
	token := owner(t, d)
	tl := waitRecorded(t, d, token, 2)
	from, to := tl.Spans[0].Start, tl.Spans[0].End
	stop()
	vols, _ := filepath.Glob(filepath.Join(cfg.Recording.Path, "vol-*.db"))
	if len(vols) == 0 {
		t.Fatal("nothing recorded on the card")
	}

	out := cfg.Recording.Path + ".out"
	if err := os.Rename(cfg.Recording.Path, out); err != nil {
		t.Fatal(err)
	}
	if err := FactoryReset(cfg, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(cfg.Data, resetCard)); err != nil {
		t.Fatalf("no mark for the card that was out: %v", err)
	}
	if err := os.Rename(out, cfg.Recording.Path); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(cfg.Recording.Path, "notes.txt"), []byte("not camd's\n"), 0o600)

	d2, stop2 := runningAt(t, cfg)
	defer stop2()
	token2 := owner(t, d2)
	rng := "from=" + from.Format(time.RFC3339Nano) + "&to=" + to.Format(time.RFC3339Nano)
	code, b := call(t, d2, "GET", "/api/v1/recordings?"+rng, token2, nil)
	var old api.TimelineAnswer
	if json.Unmarshal(b, &old); code != 200 || len(old.Spans) != 0 {
		t.Errorf("the new owner sees the old recordings: %d %s", code, b)
	}
	for _, v := range vols {
		if _, err := os.Stat(v); !errors.Is(err, fs.ErrNotExist) {
			// The ring may make a volume of the same name again; it
			// must not hold the old range.
			t.Logf("%s is there again (the new owner's recording)", v)
		}
	}
	if _, err := os.Stat(filepath.Join(cfg.Data, resetCard)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the mark is left: %v", err)
	}
	if _, err := os.Stat(filepath.Join(cfg.Recording.Path, "notes.txt")); err != nil {
		t.Errorf("a file that is not camd's was erased: %v", err)
	}
}
