package api

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/camd-project/camd/storage/snapshots"
)

// fakeStills takes the same JPEG every time, or fails with err.
type fakeStills struct {
	available bool
	err       error
	quality   int
}

func (f *fakeStills) Available() bool { return f.available }
func (f *fakeStills) JPEG(ctx context.Context, quality int) ([]byte, time.Time, error) {
	f.quality = quality
	if _, ok := ctx.Deadline(); !ok {
		return nil, time.Time{}, errors.New("no deadline")
	}
	if f.err != nil {
		return nil, time.Time{}, f.err
	}
	return []byte("\xff\xd8jpeg"), time.Date(2025, 6, 1, 8, 0, 0, 0, time.UTC), nil
}

// fakeLibrary keeps snapshots in memory.
type fakeLibrary struct{ m map[string][]byte }

func (f *fakeLibrary) Save(jpg []byte, snap snapshots.Snapshot) (snapshots.Snapshot, error) {
	snap.ID = "s" + string(rune('0'+len(f.m)))
	snap.Size = len(jpg)
	f.m[snap.ID] = jpg
	return snap, nil
}
func (f *fakeLibrary) List() ([]snapshots.Snapshot, error) {
	var out []snapshots.Snapshot
	for id := range f.m {
		out = append(out, snapshots.Snapshot{ID: id})
	}
	return out, nil
}
func (f *fakeLibrary) Get(id string) ([]byte, snapshots.Snapshot, error) {
	if jpg, ok := f.m[id]; ok {
		return jpg, snapshots.Snapshot{ID: id, Time: time.Date(2025, 6, 1, 8, 0, 0, 0, time.UTC)}, nil
	}
	return nil, snapshots.Snapshot{}, snapshots.ErrNotFound
}
func (f *fakeLibrary) Delete(id string) error {
	if _, ok := f.m[id]; !ok {
		return snapshots.ErrNotFound
	}
	delete(f.m, id)
	return nil
}

func TestSnapshots(t *testing.T) {
	stills := &fakeStills{available: true}
	lib := &fakeLibrary{m: map[string][]byte{}}
	routes := (&Snapshots{Stills: stills, Saver: lib, Library: lib, Logger: discard}).routes()

	w := do(t, routes, request{method: "GET", path: "/api/v1/snapshot?quality=70", token: "viewer-token"})
	answer(t, w, 200, nil)
	if w.Header().Get("Content-Type") != "image/jpeg" || w.Header().Get("X-Camd-Captured") != "2025-06-01T08:00:00Z" ||
		w.Body.String() != "\xff\xd8jpeg" || stills.quality != 70 {
		t.Fatalf("snapshot: %v %q (quality %d)", w.Header(), w.Body, stills.quality)
	}

	var snap snapshots.Snapshot
	w = do(t, routes, request{method: "POST", path: "/api/v1/snapshots", token: "viewer-token"})
	answer(t, w, 201, &snap)
	if w.Header().Get("Location") != "/api/v1/snapshots/"+snap.ID || snap.Cause != "manual" {
		t.Fatalf("saved: %v %+v", w.Header(), snap)
	}
	// A viewer's save counts against the viewers' share, an owner's
	// against the owners': a viewer cannot push out an owner's pictures.
	if snap.By != "u-viewer" || snap.Share != snapshots.Viewer {
		t.Fatalf("a viewer's save: %+v", snap)
	}
	var mine snapshots.Snapshot
	answer(t, do(t, routes, request{method: "POST", path: "/api/v1/snapshots", token: "owner-token"}), 201, &mine)
	if mine.By != "u-owner" || mine.Share != snapshots.Owner {
		t.Fatalf("an owner's save: %+v", mine)
	}
	delete(lib.m, mine.ID)
	var list []snapshots.Snapshot
	answer(t, do(t, routes, request{method: "GET", path: "/api/v1/snapshots", token: "viewer-token"}), 200, &list)
	if len(list) != 1 || list[0].ID != snap.ID {
		t.Fatalf("list: %+v", list)
	}
	w = do(t, routes, request{method: "GET", path: "/api/v1/snapshots/" + snap.ID, token: "viewer-token"})
	answer(t, w, 200, nil)
	if w.Body.String() != "\xff\xd8jpeg" || w.Header().Get("X-Camd-Captured") == "" {
		t.Fatalf("get: %q", w.Body)
	}
	answer(t, do(t, routes, request{method: "DELETE", path: "/api/v1/snapshots/" + snap.ID, token: "owner-token"}), 204, nil)
	answer(t, do(t, routes, request{method: "DELETE", path: "/api/v1/snapshots/" + snap.ID, token: "owner-token"}), 404, nil)
	answer(t, do(t, routes, request{method: "GET", path: "/api/v1/snapshots/" + snap.ID, token: "viewer-token"}), 404, nil)

	// A source without raw pictures and no command: 501, saying what to
	// set; a command that fails: 503 with its error.
	stills.available = false
	w = do(t, routes, request{method: "GET", path: "/api/v1/snapshot", token: "viewer-token"})
	if w.Code != 501 || !strings.Contains(errorOf(t, w), "snapshot_command") {
		t.Fatalf("no stills: %d %s", w.Code, w.Body)
	}
	answer(t, do(t, routes, request{method: "POST", path: "/api/v1/snapshots", token: "viewer-token"}), 501, nil)
	stills.available, stills.err = true, errors.New("snapshot: isp busy")
	w = do(t, routes, request{method: "GET", path: "/api/v1/snapshot", token: "viewer-token"})
	if w.Code != 503 || !strings.Contains(errorOf(t, w), "isp busy") {
		t.Fatalf("failing command: %d %s", w.Code, w.Body)
	}
}

func TestSnapshotsWithoutTheFile(t *testing.T) {
	routes := (&Snapshots{Stills: &fakeStills{available: true}, Logger: discard}).routes()
	answer(t, do(t, routes, request{method: "GET", path: "/api/v1/snapshot", token: "viewer-token"}), 200, nil)
	answer(t, do(t, routes, request{method: "POST", path: "/api/v1/snapshots", token: "viewer-token"}), 503, nil)
	var list []snapshots.Snapshot
	answer(t, do(t, routes, request{method: "GET", path: "/api/v1/snapshots", token: "viewer-token"}), 200, &list)
	if list == nil || len(list) != 0 {
		t.Fatalf("list: %v", list)
	}
	answer(t, do(t, routes, request{method: "GET", path: "/api/v1/snapshots/x", token: "viewer-token"}), 404, nil)
	answer(t, do(t, routes, request{method: "DELETE", path: "/api/v1/snapshots/x", token: "owner-token"}), 404, nil)
}
