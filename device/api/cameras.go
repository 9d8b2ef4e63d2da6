package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/camd-project/camd/media/whep"
	"github.com/camd-project/camd/nvr"
)

// Cameras is NVR mode (docs/nvr.md): the cameras camd records besides
// its own, and each one's live view, snapshot and recordings under
// /api/v1/cameras/{camera}/.
type Cameras struct {
	List  cameraList  // *nvr.Manager
	Admin cameraAdmin // *nvr.Manager, through the daemon
	Media cameraMedia // the daemon's NVR
	// Recordings answers the timeline, exports and playbacks of a
	// camera's stream as those of the camera's own.
	Recordings *Recordings
	WHEP       cameraSignalling // *whep.Server
}

// cameraList lists the cameras (nvr.ErrNotFound: no such camera).
type cameraList interface {
	List() []nvr.Camera
	Get(id string) (nvr.Camera, error)
}

// cameraAdmin adds, changes and removes cameras (nvr's errors).
type cameraAdmin interface {
	Add(ctx context.Context, req nvr.AddRequest) (nvr.Camera, error)
	Set(id string, ch nvr.Change) (nvr.Camera, error)
	Remove(id string, forget bool) (nvr.Camera, error)
}

// cameraMedia is a camera's live feed and its snapshot.
type cameraMedia interface {
	Feed(id string) (whep.Feed, error)
	Snapshot(ctx context.Context, id string) ([]byte, time.Time, error)
}

// cameraSignalling answers WHEP for a camera's live feed.
type cameraSignalling interface {
	feedSignalling
	HandleOptions(w http.ResponseWriter, r *http.Request)
}

func (a *Cameras) routes() []Route {
	if a == nil {
		return nil
	}
	return []Route{
		{"GET /api/v1/cameras", Viewer, a.handleList},
		{"POST /api/v1/cameras", Owner, a.handleAdd},
		{"GET /api/v1/cameras/{camera}", Viewer, a.handleGet},
		{"PATCH /api/v1/cameras/{camera}", Owner, a.handleSet},
		{"DELETE /api/v1/cameras/{camera}", Owner, a.handleRemove},
		{"OPTIONS /api/v1/cameras/{camera}/whep", Public, a.WHEP.HandleOptions},
		{"POST /api/v1/cameras/{camera}/whep", Stream, a.handleLive},
		{"PATCH /api/v1/cameras/{camera}/whep/{id}", Stream, a.WHEP.HandlePatch},
		{"DELETE /api/v1/cameras/{camera}/whep/{id}", Stream, a.WHEP.HandleDelete},
		{"GET /api/v1/cameras/{camera}/snapshot", Viewer, a.handleSnapshot},
		{"GET /api/v1/cameras/{camera}/recordings", Viewer, a.handleTimeline},
		{"GET /api/v1/cameras/{camera}/recordings/export", Viewer, a.handleExport},
		{"POST /api/v1/cameras/{camera}/recordings/whep", Viewer, a.handlePlayback},
		{"PATCH /api/v1/cameras/{camera}/recordings/whep/{id}", Viewer, a.WHEP.HandlePatch},
		{"DELETE /api/v1/cameras/{camera}/recordings/whep/{id}", Viewer, a.WHEP.HandleDelete},
	}
}

// cameraError answers nvr's errors.
func cameraError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, nvr.ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, nvr.ErrRemoved):
		code = http.StatusGone
	case errors.Is(err, nvr.ErrBadRequest):
		code = http.StatusBadRequest
	case errors.Is(err, nvr.ErrExists), errors.Is(err, nvr.ErrTooMany):
		code = http.StatusConflict
	case errors.Is(err, nvr.ErrRefused), errors.Is(err, nvr.ErrNoVideo), errors.Is(err, nvr.ErrNoMotion):
		// The camera refused, sends what cannot be recorded, or reports
		// no motion for motion mode: the request is understood, and
		// cannot be done.
		code = http.StatusUnprocessableEntity
	case errors.Is(err, nvr.ErrUnreachable):
		code = http.StatusBadGateway
	case errors.Is(err, nvr.ErrNoSnapshot):
		code = http.StatusNotImplemented
	}
	jsonError(w, code, err.Error())
}

func (a *Cameras) handleList(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, a.List.List())
}

func (a *Cameras) handleGet(w http.ResponseWriter, r *http.Request) {
	c, err := a.List.Get(r.PathValue("camera"))
	if err != nil {
		cameraError(w, err)
		return
	}
	writeJSON(w, c)
}

// handleAdd adds a camera: {"code": "CAMD1:…"} (a camd camera's
// invitation), {"rtsp": "rtsp://…"} or {"onvif": "HOST:PORT", "user",
// "password"}; 201 with the camera.
func (a *Cameras) handleAdd(w http.ResponseWriter, r *http.Request) {
	var req nvr.AddRequest
	if !decode(w, r, &req) {
		return
	}
	c, err := a.Admin.Add(r.Context(), req)
	if err != nil {
		cameraError(w, err)
		return
	}
	w.Header().Set("Location", "/api/v1/cameras/"+c.ID)
	w.WriteHeader(http.StatusCreated)
	writeJSON(w, c)
}

// handleSet changes a camera's name or recording mode.
func (a *Cameras) handleSet(w http.ResponseWriter, r *http.Request) {
	var ch nvr.Change
	if !decode(w, r, &ch) {
		return
	}
	c, err := a.Admin.Set(r.PathValue("camera"), ch)
	if err != nil {
		cameraError(w, err)
		return
	}
	writeJSON(w, c)
}

// handleRemove removes a camera and deletes its credential; its
// recordings stay, and the camera stays listed as removed, unless
// ?recordings=delete, which forgets the camera and its recordings.
func (a *Cameras) handleRemove(w http.ResponseWriter, r *http.Request) {
	forget := false
	switch q := r.URL.Query().Get("recordings"); q {
	case "", "keep":
	case "delete":
		forget = true
	default:
		jsonError(w, http.StatusBadRequest, "cameras: recordings is keep (the default) or delete")
		return
	}
	c, err := a.Admin.Remove(r.PathValue("camera"), forget)
	if err != nil {
		cameraError(w, err)
		return
	}
	writeJSON(w, c)
}

// handleLive answers a WHEP offer with a session that plays the camera's
// live feed (its hub, from the cached group of pictures).
func (a *Cameras) handleLive(w http.ResponseWriter, r *http.Request) {
	feed, err := a.Media.Feed(r.PathValue("camera"))
	if err != nil {
		cameraError(w, err)
		return
	}
	a.WHEP.HandleFeedOffer(w, r, feed)
}

func (a *Cameras) handleSnapshot(w http.ResponseWriter, r *http.Request) {
	jpg, at, err := a.Media.Snapshot(r.Context(), r.PathValue("camera"))
	if err != nil {
		cameraError(w, err)
		return
	}
	w.Header().Set("Content-Type", "image/jpeg")
	w.Header().Set("X-Camd-Captured", at.UTC().Format(time.RFC3339Nano))
	w.Write(jpg)
}

// stream is the recording stream of the request's camera (removed ones
// included); on failure it answers and returns false.
func (a *Cameras) stream(w http.ResponseWriter, r *http.Request) (uint32, bool) {
	c, err := a.List.Get(r.PathValue("camera"))
	if err != nil {
		cameraError(w, err)
		return 0, false
	}
	return c.Stream, true
}

func (a *Cameras) handleTimeline(w http.ResponseWriter, r *http.Request) {
	if s, ok := a.stream(w, r); ok {
		a.Recordings.timeline(w, r, s)
	}
}

func (a *Cameras) handleExport(w http.ResponseWriter, r *http.Request) {
	if s, ok := a.stream(w, r); ok {
		a.Recordings.export(w, r, s)
	}
}

func (a *Cameras) handlePlayback(w http.ResponseWriter, r *http.Request) {
	if s, ok := a.stream(w, r); ok {
		a.Recordings.playback(w, r, s)
	}
}
