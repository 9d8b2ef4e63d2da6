package device

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/camd-project/camd/device/metrics"
	"github.com/camd-project/camd/media"
	"github.com/camd-project/camd/media/recorder"
	"github.com/camd-project/camd/media/snapshot"
	"github.com/camd-project/camd/media/whep"
	"github.com/camd-project/camd/nvr"
	"github.com/camd-project/camd/storage"
	"github.com/camd-project/camd/storage/eventlog"
)

// nvrState is NVR mode (docs/nvr.md): the cameras camd records besides
// its own, each pulled into a hub of its own by the manager, each hub
// recorded by a recorder of the camera's stream into the one recording
// store.
type nvrState struct {
	m     *nvr.Manager
	rs    *recordingState
	snapc []string // nvr.snapshot_command
	// preRoll, postRoll are recording.pre_roll and post_roll, for the
	// cameras in motion mode.
	preRoll, postRoll time.Duration
	log               *slog.Logger

	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.Mutex
	recs  map[string]*recorder.Recorder // camera ID → its recorder, while pulled
	snaps map[string]*snapshot.Command  // camera ID → its snapshot command
}

func openNVR(cfg Config, cat *storage.Catalog, rs *recordingState, evlog *eventlog.Log, log *slog.Logger) (*nvrState, error) {
	n := &nvrState{rs: rs, snapc: cfg.NVR.SnapshotCommand, log: log, preRoll: cfg.Recording.PreRoll, postRoll: cfg.Recording.PostRoll,
		recs: map[string]*recorder.Recorder{}, snaps: map[string]*snapshot.Command{}}
	var err error
	n.m, err = nvr.Open(nvr.Options{
		Catalog:    cat,
		Name:       "camd NVR " + cfg.Name,
		Attach:     n.attach,
		Changed:    n.changed,
		Motion:     n.motion,
		MaxCameras: cfg.NVR.MaxCameras,
		Event: func(kind string, c nvr.Camera, data map[string]string) {
			if data == nil {
				data = map[string]string{}
			}
			data["name"], data["state"] = c.Name, string(c.State)
			evlog.Add(eventlog.Event{Kind: kind, Camera: c.ID, Data: data})
		},
		Logger: log,
	})
	if err != nil {
		return nil, err
	}
	return n, nil
}

// recorderMode is the recorder's mode for a camera's recording mode.
func recorderMode(r nvr.Recording) recorder.Mode {
	switch r {
	case nvr.RecordOff:
		return recorder.Off
	case nvr.RecordMotion:
		return recorder.Motion
	}
	return recorder.Continuous
}

// attach records a camera's hub while it is pulled.
func (n *nvrState) attach(c nvr.Camera, hub *media.Hub) func() {
	n.rs.store.SetShare(c.Stream, c.QuotaShare/100)
	rec := recorder.New(hub, n.rs.store, recorder.Options{Stream: c.Stream, Mode: recorderMode(c.Recording),
		PreRoll: n.preRoll, PostRoll: n.postRoll, Logger: n.log.With("camera", c.ID)})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { rec.Run(ctx) })
	n.mu.Lock()
	n.recs[c.ID] = rec
	n.mu.Unlock()
	return func() {
		n.mu.Lock()
		delete(n.recs, c.ID)
		n.mu.Unlock()
		cancel()
		wg.Wait()
	}
}

// changed follows a camera's recording mode and share of the quota.
func (n *nvrState) changed(c nvr.Camera) {
	n.rs.store.SetShare(c.Stream, c.QuotaShare/100)
	n.mu.Lock()
	rec := n.recs[c.ID]
	n.mu.Unlock()
	if rec == nil {
		return
	}
	rec.SetMode(recorderMode(c.Recording))
}

// motion is the motion a camera in motion mode reports, for its
// recorder (its pre-roll and post-roll as a camera's own).
func (n *nvrState) motion(c nvr.Camera, active bool, at time.Time) {
	n.mu.Lock()
	rec := n.recs[c.ID]
	n.mu.Unlock()
	if rec != nil {
		rec.SetMotion("camera", active, at)
	}
}

// Recorder is the recorder of a camera while it is pulled (nil when not).
func (n *nvrState) Recorder(id string) (recorder.Stats, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	rec := n.recs[id]
	if rec == nil {
		return recorder.Stats{}, false
	}
	return rec.Stats(), true
}

// stats are the cameras' counters for /metrics.
func (n *nvrState) stats() []metrics.CameraStats {
	var out []metrics.CameraStats
	for _, c := range n.m.List() {
		if c.State == nvr.Removed {
			continue
		}
		st := metrics.CameraStats{Camera: c.ID, Online: c.State == nvr.Online, Frames: c.Frames}
		if rs, ok := n.Recorder(c.ID); ok {
			st.Fragments, st.Dropped = rs.Fragments, rs.Dropped
		}
		out = append(out, st)
	}
	return out
}

// Snapshot is a JPEG of a camera's picture: a camd camera's own, or
// nvr.snapshot_command's of the camera's newest keyframe.
func (n *nvrState) Snapshot(ctx context.Context, id string) ([]byte, time.Time, error) {
	jpeg, err := n.m.Snapshot(ctx, id)
	if err == nil {
		return jpeg, time.Now(), nil
	}
	if !errors.Is(err, nvr.ErrNoSnapshot) || len(n.snapc) == 0 {
		return nil, time.Time{}, err
	}
	hub, err := n.m.Hub(id)
	if err != nil {
		return nil, time.Time{}, err
	}
	n.mu.Lock()
	cmd := n.snaps[id]
	if cmd == nil {
		cmd = &snapshot.Command{Argv: n.snapc, Keyframe: func() ([]byte, time.Time) {
			if k := hub.LastKeyframe(); k != nil {
				return k.Data, k.Captured
			}
			return nil, time.Time{}
		}}
		n.snaps[id] = cmd
	}
	n.mu.Unlock()
	return cmd.JPEG(ctx, 85)
}

// start pulls the cameras until ctx ends (or close).
func (n *nvrState) start(ctx context.Context) {
	ctx, n.cancel = context.WithCancel(ctx)
	n.wg.Go(func() { n.m.Run(ctx) })
}

// close stops the pullers and their recorders, and closes the cameras'
// hubs (their viewers' sessions end). It is safe to call twice.
func (n *nvrState) close() {
	if n.cancel != nil {
		n.cancel()
	}
	n.wg.Wait()
	n.m.Close()
}

// Add adds a camera (api.Cameras).
func (n *nvrState) Add(ctx context.Context, req nvr.AddRequest) (nvr.Camera, error) {
	return n.m.Add(ctx, req)
}

// Set changes a camera (api.Cameras).
func (n *nvrState) Set(id string, ch nvr.Change) (nvr.Camera, error) { return n.m.Set(id, ch) }

// Feed is a camera's live view for a WHEP session: its hub, which the
// session plays from the cached group of pictures.
func (n *nvrState) Feed(id string) (whep.Feed, error) {
	hub, err := n.m.Hub(id)
	if err != nil {
		return whep.Feed{}, err
	}
	return whep.Feed{Hub: hub}, nil
}

// Remove removes a camera; with forget it also deletes the camera's
// recordings from the store, then forgets the camera. The camera is
// stopped first (its recorder with it), and forgotten only once its
// recordings are deleted: a deletion the catalog refuses leaves it
// listed as removed, for the owner to ask again.
func (n *nvrState) Remove(id string, forget bool) (nvr.Camera, error) {
	n.mu.Lock()
	delete(n.snaps, id)
	n.mu.Unlock()
	if !forget {
		return n.m.Remove(id, false)
	}
	c, err := n.m.Remove(id, false)
	if err != nil && !errors.Is(err, nvr.ErrRemoved) {
		return c, err
	}
	if _, err := n.rs.store.DeleteStream(c.Stream); err != nil {
		return c, fmt.Errorf("device: deleting the recordings of camera %s: %w", id, err)
	}
	return n.m.Remove(id, true)
}
