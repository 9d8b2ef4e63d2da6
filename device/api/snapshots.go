package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/camd-project/camd/device/pairing"
	"github.com/camd-project/camd/storage/snapshots"
)

// Snapshots are JPEG pictures of the camera's view: taken now, saved,
// listed, fetched and deleted.
type Snapshots struct {
	Stills stillTaker // the daemon's snapshot takers
	// Saver and Library keep the saved snapshots (*snapshots.Store); nil
	// when the snapshot file cannot be opened.
	Saver   snapshotSaver
	Library snapshotLibrary
	// MJPEGRate is the frame rate of GET /api/v1/mjpeg, shared by every
	// client (0: DefaultMJPEGRate); MJPEGClients how many may watch it at
	// once (0: DefaultMJPEGClients).
	MJPEGRate, MJPEGClients int
	Logger                  *slog.Logger

	mjpeg mjpegFeed
}

// stillTaker takes a JPEG of the current picture.
type stillTaker interface {
	// Available reports whether the source shows raw pictures or a
	// snapshot command is set.
	Available() bool
	JPEG(ctx context.Context, quality int) ([]byte, time.Time, error)
}

// snapshotSaver keeps a snapshot; snap says when, why, by whom and
// against which share of the store (snapshots.Owner, Viewer).
type snapshotSaver interface {
	Save(jpeg []byte, snap snapshots.Snapshot) (snapshots.Snapshot, error)
}

// snapshotLibrary is the saved snapshots.
type snapshotLibrary interface {
	List() ([]snapshots.Snapshot, error)
	Get(id string) ([]byte, snapshots.Snapshot, error)
	Delete(id string) error
}

func (a *Snapshots) routes() []Route {
	return []Route{
		{"GET /api/v1/snapshot", Viewer, a.handleTake},
		// The URLs for Home Assistant's generic camera and NVRs: Basic
		// with a stream key works here.
		{"GET /api/v1/snapshot.jpg", Stream, a.handleTake},
		{"GET /api/v1/mjpeg", Stream, a.handleMJPEG},
		{"GET /api/v1/snapshots", Viewer, a.handleList},
		{"POST /api/v1/snapshots", Viewer, a.handleSave},
		{"GET /api/v1/snapshots/{id}", Viewer, a.handleGet},
		{"DELETE /api/v1/snapshots/{id}", Owner, a.handleDelete},
	}
}

var errNoStills = errors.New("snapshot: this source gives no raw pictures (a passthrough stream is encoded by the camera's hardware) and passthrough.snapshot_command is not set")

// take takes a JPEG of the current picture; on failure it returns the
// HTTP status to answer with.
func (a *Snapshots) take(r *http.Request) ([]byte, time.Time, int, error) {
	if !a.Stills.Available() {
		return nil, time.Time{}, http.StatusNotImplemented, errNoStills
	}
	q, _ := strconv.Atoi(r.URL.Query().Get("quality"))
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	jpg, at, err := a.Stills.JPEG(ctx, q)
	if err != nil {
		a.Logger.Warn("camd: snapshot failed", "err", err)
		return nil, time.Time{}, http.StatusServiceUnavailable, err
	}
	return jpg, at, 0, nil
}

func (a *Snapshots) handleTake(w http.ResponseWriter, r *http.Request) {
	jpg, at, code, err := a.take(r)
	if err != nil {
		jsonError(w, code, err.Error())
		return
	}
	w.Header().Set("Content-Type", "image/jpeg")
	w.Header().Set("X-Camd-Captured", at.UTC().Format(time.RFC3339Nano))
	w.Write(jpg)
}

func (a *Snapshots) handleSave(w http.ResponseWriter, r *http.Request) {
	if a.Saver == nil {
		jsonError(w, http.StatusServiceUnavailable, "snapshots: the snapshot file cannot be opened")
		return
	}
	jpg, at, code, err := a.take(r)
	if err != nil {
		jsonError(w, code, err.Error())
		return
	}
	// A viewer's saves count against the viewers' share of the store, so
	// they can push out only older viewers' pictures, never an owner's
	// or a motion event's.
	u := UserFrom(r.Context())
	share := snapshots.Viewer
	if u.Role == pairing.Owner {
		share = snapshots.Owner
	}
	snap, err := a.Saver.Save(jpg, snapshots.Snapshot{Time: at, Cause: "manual", By: u.ID, Share: share})
	if err != nil {
		jsonError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Location", "/api/v1/snapshots/"+snap.ID)
	w.WriteHeader(http.StatusCreated)
	writeJSON(w, snap)
}

func (a *Snapshots) handleList(w http.ResponseWriter, _ *http.Request) {
	if a.Library == nil {
		writeJSON(w, []snapshots.Snapshot{})
		return
	}
	list, err := a.Library.List()
	if err != nil {
		jsonError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, list)
}

func (a *Snapshots) handleGet(w http.ResponseWriter, r *http.Request) {
	if a.Library == nil {
		jsonError(w, http.StatusNotFound, "snapshots: none")
		return
	}
	jpg, snap, err := a.Library.Get(r.PathValue("id"))
	if err != nil {
		jsonError(w, http.StatusNotFound, err.Error())
		return
	}
	w.Header().Set("Content-Type", "image/jpeg")
	w.Header().Set("X-Camd-Captured", snap.Time.UTC().Format(time.RFC3339Nano))
	w.Write(jpg)
}

func (a *Snapshots) handleDelete(w http.ResponseWriter, r *http.Request) {
	if a.Library == nil {
		jsonError(w, http.StatusNotFound, "snapshots: none")
		return
	}
	if err := a.Library.Delete(r.PathValue("id")); err != nil {
		jsonError(w, http.StatusNotFound, err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
