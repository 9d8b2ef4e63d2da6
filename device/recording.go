package device

import (
	"context"
	"errors"
	"fmt"
	"image"
	"io/fs"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/camd-project/camd/device/settings"
	"github.com/camd-project/camd/media"
	"github.com/camd-project/camd/media/export"
	"github.com/camd-project/camd/media/motion"
	"github.com/camd-project/camd/media/recorder"
	"github.com/camd-project/camd/media/snapshot"
	"github.com/camd-project/camd/storage/eventlog"
	"github.com/camd-project/camd/storage/recordings"
	"github.com/camd-project/camd/storage/snapshots"
)

// RecordingConfig says where camd records and how much it keeps
// (docs/storage.md). The mode and the motion sensitivity are settings
// (recording_mode, motion_sensitivity), changed while camd runs.
type RecordingConfig struct {
	// Path holds the recording volumes (default DATA/recordings). On an
	// SD card, use a directory on the card rather than its mount point:
	// while the card is out, the directory is missing and recording
	// pauses instead of filling the device's own flash.
	Path string `yaml:"path"`
	// Quota bounds what the recordings use: a size ("4GiB") or a share of
	// the file system ("80%").
	Quota string `yaml:"quota"`
	// VolumeSize bounds each volume file (1MiB to 512MiB).
	VolumeSize string `yaml:"volume_size"`
	// PreRoll is the recording kept from before the motion, PostRoll the
	// recording after it.
	PreRoll  time.Duration `yaml:"pre_roll"`
	PostRoll time.Duration `yaml:"post_roll"`
	// MotionRegions are the parts of the picture that motion detection
	// watches, each [x, y, width, height] in fractions of the picture;
	// none means all of it.
	MotionRegions [][4]float64 `yaml:"motion_regions"`
}

func defaultRecording() RecordingConfig {
	return RecordingConfig{Quota: "10%", VolumeSize: "256MiB", PreRoll: 5 * time.Second, PostRoll: 10 * time.Second}
}

func (rc RecordingConfig) validate() error {
	if _, err := recordings.ParseQuota(rc.Quota); err != nil {
		return &FieldError{"recording.quota", strconv.Quote(rc.Quota), `a size such as "4GiB" or a share such as "80%"`}
	}
	if n, err := recordings.ParseSize(rc.VolumeSize); err != nil || n < recordings.MinVolumeSize || n > 512<<20 {
		return &FieldError{"recording.volume_size", strconv.Quote(rc.VolumeSize), "1MiB to 512MiB (bbolt maps whole files: 32-bit boards allow 1 to 2 GB)"}
	}
	if rc.PreRoll < 0 || rc.PreRoll > time.Minute {
		return &FieldError{"recording.pre_roll", rc.PreRoll, "0s to 1m"}
	}
	if rc.PostRoll < time.Second || rc.PostRoll > 10*time.Minute {
		return &FieldError{"recording.post_roll", rc.PostRoll, "1s to 10m"}
	}
	for _, r := range rc.MotionRegions {
		if err := (motion.Options{Regions: []motion.Region{{X: r[0], Y: r[1], W: r[2], H: r[3]}}}).Validate(); err != nil {
			return &FieldError{"recording.motion_regions", fmt.Sprint(r), "[x, y, width, height] within 0 to 1"}
		}
	}
	return nil
}

// recordingState is recording, motion detection, snapshots and the event
// log.
type recordingState struct {
	store    *recordings.Store
	rec      *recorder.Recorder
	detector *motion.Detector
	grab     *snapshot.Grabber
	stills   *snapshot.Command // nil unless passthrough.snapshot_command is set
	snaps    *snapshots.Store  // nil if snapshots.db cannot be opened
	events   *eventlog.Log
	// playbacks are recordings played to WebRTC viewers.
	playbacks playbacks

	tasks  chan func() // catalog writes, in order, off the media path
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.Mutex
	spans map[uint64]uint64 // recorder span → event
}

// stream is the recording stream number of the camera's own video.
const stream = 1

// initRecording opens the recordings and prepares the recorder. Trouble
// with the card never stops camd: recording pauses with an event.
func (d *Daemon) initRecording() error {
	rs := &d.recording
	rc := d.cfg.Recording
	dir := rc.Path
	if dir == "" {
		dir = filepath.Join(d.cfg.Data, "recordings")
	}
	quota, _ := recordings.ParseQuota(rc.Quota)
	volSize, _ := recordings.ParseSize(rc.VolumeSize)
	rs.events = eventlog.New(d.catalog, eventlog.Options{})
	rs.tasks = make(chan func(), 64)
	rs.spans = map[uint64]uint64{}
	var err error
	rs.store, err = recordings.Open(d.catalog, recordings.Options{
		Dir: dir, VolumeSize: volSize, Quota: quota, Logger: d.log,
		Notify: func(e recordings.Event) {
			d.later(func() { rs.events.Add(eventlog.Event{Kind: e.Kind, Message: e.Message, Data: e.Data}) })
		},
	})
	if err != nil {
		return err
	}
	if rs.snaps, err = snapshots.Open(filepath.Join(d.cfg.Data, "snapshots.db"), snapshots.Options{}); err != nil {
		d.log.Warn("camd: saved snapshots unavailable", "err", err)
	} else if rs.snaps.Quarantined != "" {
		d.log.Warn("camd: snapshots file was damaged; moved aside", "moved_to", rs.snaps.Quarantined)
	}
	s := d.settings.store.Get()
	rs.rec = recorder.New(d.hub, rs.store, recorder.Options{
		Stream: stream, Mode: recorder.Mode(s.RecordingMode),
		PreRoll: rc.PreRoll, PostRoll: rc.PostRoll,
		OnSpan: d.onMotionSpan, Logger: d.log,
	})
	rs.grab = &snapshot.Grabber{}
	if argv := d.cfg.Passthrough.SnapshotCommand; len(argv) > 0 {
		rs.stills = &snapshot.Command{Argv: argv, Keyframe: func() ([]byte, time.Time) {
			if k := d.hub.LastKeyframe(); k != nil {
				return k.Data, k.Captured
			}
			return nil, time.Time{}
		}}
	}
	regions := make([]motion.Region, len(rc.MotionRegions))
	for i, r := range rc.MotionRegions {
		regions[i] = motion.Region{X: r[0], Y: r[1], W: r[2], H: r[3]}
	}
	rs.detector, err = motion.New(motion.Options{Sensitivity: s.MotionSensitivity, Regions: regions,
		OnChange: func(active bool, at time.Time) { rs.rec.SetMotion("picture", active, at) }})
	if err != nil {
		return err
	}
	d.attachRaw()
	d.onSettings(func(before, after settings.Settings) {
		if before.RecordingMode != after.RecordingMode {
			rs.rec.SetMode(recorder.Mode(after.RecordingMode))
		}
		if before.MotionSensitivity != after.MotionSensitivity {
			rs.detector.SetSensitivity(after.MotionSensitivity)
		}
		d.attachRaw() // a rebuilt source starts without it
	})
	return nil
}

// rawSetter is a source that shows its raw pictures (synthetic, capture).
type rawSetter interface{ SetRaw(media.RawFunc) }

// attachRaw hands the raw pictures of the current source to snapshots and
// motion detection.
func (d *Daemon) attachRaw() {
	if d.settings.live == nil {
		return
	}
	if s, ok := d.settings.live.current().(rawSetter); ok {
		s.SetRaw(d.rawPicture)
	}
}

func (d *Daemon) rawPicture(pic *image.YCbCr, at time.Time) {
	rs := &d.recording
	rs.grab.Offer(pic, at)
	if rs.rec.Mode() != recorder.Off {
		rs.detector.Offer(pic, at)
	}
}

// later runs f on the recording's task goroutine: catalog writes wait
// there, in order, instead of on the media path.
func (d *Daemon) later(f func()) {
	select {
	case d.recording.tasks <- f:
	default:
		d.log.Warn("camd: event log behind; an event was dropped")
	}
}

// onMotionSpan records a motion span as an event with a snapshot taken
// when it starts.
func (d *Daemon) onMotionSpan(sp recorder.Span) {
	rs := &d.recording
	if sp.End.IsZero() {
		d.log.Info("camd: motion", "cause", sp.Cause)
		d.later(func() {
			data := map[string]string{"cause": sp.Cause}
			if taker := rs.stillTaker(); taker != nil && rs.snaps != nil {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				jpg, at, err := taker.JPEG(ctx, 0)
				cancel()
				if err == nil {
					if snap, err := rs.snaps.Save(jpg, at, "motion"); err == nil {
						data["snapshot"] = snap.ID
					}
				}
			}
			id, err := rs.events.Add(eventlog.Event{Time: sp.Start, Kind: "motion", Message: "motion (" + sp.Cause + ")", Data: data})
			if err == nil {
				rs.mu.Lock()
				rs.spans[sp.ID] = id
				rs.mu.Unlock()
			}
		})
		return
	}
	d.later(func() {
		rs.mu.Lock()
		id, ok := rs.spans[sp.ID]
		delete(rs.spans, sp.ID)
		rs.mu.Unlock()
		if ok {
			rs.events.Update(id, func(e *eventlog.Event) { e.End = sp.End })
		}
	})
}

// startRecording runs the recorder and the event writer until ctx ends
// (or closeRecording). The board's PIR input triggers motion.
func (d *Daemon) startRecording(ctx context.Context) {
	rs := &d.recording
	if rs.rec == nil {
		return
	}
	ctx, rs.cancel = context.WithCancel(ctx)
	rs.wg.Go(func() { rs.rec.Run(ctx) })
	rs.wg.Go(func() {
		for {
			select {
			case f := <-rs.tasks:
				f()
			case <-ctx.Done():
				for {
					select {
					case f := <-rs.tasks:
						f()
					default:
						return
					}
				}
			}
		}
	})
	if d.board.b != nil {
		prev := d.board.events.motion
		d.board.events.motion = func(active bool) {
			if prev != nil {
				prev(active)
			}
			rs.rec.SetMotion("pir", active, time.Now())
		}
	}
}

// closeRecording stops the recorder, letting it store what it holds, and
// closes the files. It is safe to call twice.
func (d *Daemon) closeRecording() {
	rs := &d.recording
	d.closePlaybacks()
	if rs.cancel != nil {
		rs.cancel()
	}
	rs.wg.Wait()
	if rs.store != nil {
		rs.store.Close()
	}
	if rs.snaps != nil {
		rs.snaps.Close()
	}
}

func (d *Daemon) recordingRoutes() []route {
	web, _ := fs.Sub(webFiles, "web")
	static := http.FileServerFS(web)
	return []route{
		{"GET /recordings.js", Public, static.ServeHTTP},
		{"GET /api/v1/recordings", Viewer, d.handleTimeline},
		{"GET /api/v1/recordings/export", Viewer, d.handleExport},
		{"POST /api/v1/recordings/whep", Viewer, d.handlePlayback},
		{"PATCH /api/v1/recordings/whep/{id}", Viewer, d.whep.HandlePatch},
		{"DELETE /api/v1/recordings/whep/{id}", Viewer, d.whep.HandleDelete},
		{"GET /api/v1/recordings/status", Viewer, d.handleRecordingStatus},
		{"DELETE /api/v1/recordings", Owner, d.handleDeleteRecordings},
		{"POST /api/v1/motion", Owner, d.handleMotionTrigger},
		{"GET /api/v1/snapshot", Viewer, d.handleSnapshot},
		{"GET /api/v1/snapshots", Viewer, d.handleListSnapshots},
		{"POST /api/v1/snapshots", Viewer, d.handleSaveSnapshot},
		{"GET /api/v1/snapshots/{id}", Viewer, d.handleGetSnapshot},
		{"DELETE /api/v1/snapshots/{id}", Owner, d.handleDeleteSnapshot},
		{"GET /api/v1/events", Viewer, d.handleEvents},
	}
}

// parseTime reads a time given to the API: RFC 3339, "now", a
// duration relative to now ("-60s", "-2h30m", "+5m"), or Unix seconds.
func parseTime(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "" || s == "now":
		return now, nil
	case s[0] == '-' || s[0] == '+':
		d, err := time.ParseDuration(s)
		if err != nil {
			return time.Time{}, fmt.Errorf("time %q: %v", s, err)
		}
		return now.Add(d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if secs, err := strconv.ParseFloat(s, 64); err == nil && secs >= 0 && secs < 1e11 {
		return time.Unix(0, int64(secs*1e9)), nil
	}
	return time.Time{}, fmt.Errorf("time %q is not RFC 3339 (2025-06-01T08:00:00Z), now, a relative duration (-60s) or Unix seconds", s)
}

// rangeParams reads from and to (defaults: the last hour).
func rangeParams(r *http.Request) (from, to time.Time, err error) {
	now := time.Now()
	q := r.URL.Query()
	f, t := q.Get("from"), q.Get("to")
	if f == "" {
		f = "-1h"
	}
	if from, err = parseTime(f, now); err != nil {
		return
	}
	to, err = parseTime(t, now)
	return
}

func (d *Daemon) recordingReady(w http.ResponseWriter) bool {
	if d.recording.store == nil {
		jsonError(w, http.StatusServiceUnavailable, "recordings: not available")
		return false
	}
	return true
}

// rangeError maps the store's errors to HTTP answers.
func rangeError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, recordings.ErrRange), errors.Is(err, recordings.ErrTooLong):
		jsonError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, recordings.ErrNoRecording):
		jsonError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, recordings.ErrBusy):
		w.Header().Set("Retry-After", "5")
		jsonError(w, http.StatusTooManyRequests, err.Error())
	default:
		jsonError(w, http.StatusInternalServerError, err.Error())
	}
}

// TimelineAnswer is the answer of GET /api/v1/recordings.
type TimelineAnswer struct {
	From     time.Time          `json:"from"`
	To       time.Time          `json:"to"`
	Spans    []recordings.Span  `json:"spans"`
	Gaps     []recordings.Span  `json:"gaps"`
	Recorded float64            `json:"recorded_s"`
	Status   recordingStatusOut `json:"status"`
}

func (d *Daemon) handleTimeline(w http.ResponseWriter, r *http.Request) {
	if !d.recordingReady(w) {
		return
	}
	from, to, err := rangeParams(r)
	if err != nil {
		jsonError(w, http.StatusBadRequest, err.Error())
		return
	}
	tl, err := d.recording.store.Timeline(stream, from, to)
	if err != nil {
		rangeError(w, err)
		return
	}
	writeJSON(w, TimelineAnswer{From: tl.From, To: tl.To, Spans: tl.Spans, Gaps: tl.Gaps,
		Recorded: tl.Recorded.Seconds(), Status: d.recordingStatus()})
}

// openExport opens the recordings of the request's ?from&to and sets the
// X-Camd-Start and X-Camd-End headers; on failure it answers and returns
// nil.
func (d *Daemon) openExport(w http.ResponseWriter, r *http.Request) *export.File {
	if !d.recordingReady(w) {
		return nil
	}
	from, to, err := rangeParams(r)
	if err != nil {
		jsonError(w, http.StatusBadRequest, err.Error())
		return nil
	}
	c, err := d.recording.store.Clip(stream, from, to)
	if err != nil {
		rangeError(w, err)
		return nil
	}
	x, err := export.New(c)
	if err != nil {
		rangeError(w, err)
		return nil
	}
	w.Header().Set("X-Camd-Start", x.Start.UTC().Format(time.RFC3339Nano))
	w.Header().Set("X-Camd-End", x.End.UTC().Format(time.RFC3339Nano))
	return x
}

// handleExport serves a range as one MP4 file, with range requests.
func (d *Daemon) handleExport(w http.ResponseWriter, r *http.Request) {
	x := d.openExport(w, r)
	if x == nil {
		return
	}
	defer x.Close()
	h := w.Header()
	h.Set("Content-Type", "video/mp4")
	if x.Truncated {
		h.Set("X-Camd-Truncated", "tracks changed; the file ends there")
	}
	// The same range of the same recordings is the same bytes: a client
	// resumes an interrupted download with If-Range.
	h.Set("ETag", fmt.Sprintf(`"%x-%x-%x"`, x.Start.UnixNano(), x.End.UnixNano(), x.Size()))
	name := "camd-" + x.Start.UTC().Format("20060102T150405Z") + ".mp4"
	if r.URL.Query().Get("download") != "" {
		h.Set("Content-Disposition", `attachment; filename="`+name+`"`)
	}
	http.ServeContent(w, r, name, x.End, x)
}

type recordingStatusOut struct {
	recordings.Stats
	Recorder recorder.Stats `json:"recorder"`
	Motion   motion.Stats   `json:"motion"`
	Dir      string         `json:"dir"`
	Raw      bool           `json:"raw_pictures"`
	// Snapshots: snapshots can be taken (raw pictures or a command).
	Snapshots bool `json:"snapshots"`
}

func (d *Daemon) recordingStatus() recordingStatusOut {
	rs := &d.recording
	return recordingStatusOut{Stats: rs.store.Stats(), Recorder: rs.rec.Stats(), Motion: rs.detector.Stats(),
		Raw: rs.grab.Offered() > 0, Snapshots: rs.stillTaker() != nil}
}

func (d *Daemon) handleRecordingStatus(w http.ResponseWriter, _ *http.Request) {
	if !d.recordingReady(w) {
		return
	}
	writeJSON(w, d.recordingStatus())
}

// handleDeleteRecordings deletes the volumes whose recordings all end
// before ?before= (whole volumes only), or every recording with ?all=1.
func (d *Daemon) handleDeleteRecordings(w http.ResponseWriter, r *http.Request) {
	if !d.recordingReady(w) {
		return
	}
	var before time.Time
	switch q := r.URL.Query(); {
	case q.Get("all") == "1":
	case q.Get("before") != "":
		t, err := parseTime(q.Get("before"), time.Now())
		if err != nil {
			jsonError(w, http.StatusBadRequest, err.Error())
			return
		}
		before = t
	default:
		jsonError(w, http.StatusBadRequest, "recordings: give ?before=TIME (whole volumes that end before it) or ?all=1")
		return
	}
	n, err := d.recording.store.Delete(before)
	if err != nil {
		jsonError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, map[string]int{"volumes_deleted": n})
}

// MotionTrigger is the body of POST /api/v1/motion: motion from outside
// the picture (a PIR sensor wired elsewhere, an alarm panel) that lasts
// Seconds (default 1).
type MotionTrigger struct {
	Cause   string  `json:"cause,omitempty"`
	Seconds float64 `json:"seconds,omitempty"`
}

func (d *Daemon) handleMotionTrigger(w http.ResponseWriter, r *http.Request) {
	if !d.recordingReady(w) {
		return
	}
	var t MotionTrigger
	if !decode(w, r, &t) {
		return
	}
	if t.Seconds == 0 {
		t.Seconds = 1
	}
	if t.Seconds < 0 || t.Seconds > 3600 {
		jsonError(w, http.StatusBadRequest, "motion: seconds must be within 0 to 3600")
		return
	}
	if t.Cause == "" {
		t.Cause = "api"
	}
	if len(t.Cause) > 32 {
		jsonError(w, http.StatusBadRequest, "motion: cause longer than 32 characters")
		return
	}
	d.recording.rec.Trigger(t.Cause, time.Duration(t.Seconds*float64(time.Second)))
	writeJSON(w, d.recording.rec.Stats())
}

// stillTaker is what takes snapshots: the raw pictures when the source
// shows them, else the snapshot command, else nil.
func (rs *recordingState) stillTaker() interface {
	JPEG(context.Context, int) ([]byte, time.Time, error)
} {
	switch {
	case rs.grab != nil && rs.grab.Offered() > 0:
		return rs.grab
	case rs.stills != nil:
		return rs.stills
	}
	return nil
}

// snapshot takes a JPEG of the current picture.
func (d *Daemon) snapshot(r *http.Request) ([]byte, time.Time, int, error) {
	taker := d.recording.stillTaker()
	if taker == nil {
		return nil, time.Time{}, http.StatusNotImplemented,
			errors.New("snapshot: this source gives no raw pictures (a passthrough stream is encoded by the camera's hardware) and passthrough.snapshot_command is not set")
	}
	q, _ := strconv.Atoi(r.URL.Query().Get("quality"))
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	jpg, at, err := taker.JPEG(ctx, q)
	if err != nil {
		d.log.Warn("camd: snapshot failed", "err", err)
		return nil, time.Time{}, http.StatusServiceUnavailable, err
	}
	return jpg, at, 0, nil
}

func (d *Daemon) handleSnapshot(w http.ResponseWriter, r *http.Request) {
	jpg, at, code, err := d.snapshot(r)
	if err != nil {
		jsonError(w, code, err.Error())
		return
	}
	w.Header().Set("Content-Type", "image/jpeg")
	w.Header().Set("X-Camd-Captured", at.UTC().Format(time.RFC3339Nano))
	w.Write(jpg)
}

func (d *Daemon) handleSaveSnapshot(w http.ResponseWriter, r *http.Request) {
	if d.recording.snaps == nil {
		jsonError(w, http.StatusServiceUnavailable, "snapshots: the snapshot file cannot be opened")
		return
	}
	jpg, at, code, err := d.snapshot(r)
	if err != nil {
		jsonError(w, code, err.Error())
		return
	}
	snap, err := d.recording.snaps.Save(jpg, at, "manual")
	if err != nil {
		jsonError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Location", "/api/v1/snapshots/"+snap.ID)
	w.WriteHeader(http.StatusCreated)
	writeJSON(w, snap)
}

func (d *Daemon) handleListSnapshots(w http.ResponseWriter, _ *http.Request) {
	if d.recording.snaps == nil {
		writeJSON(w, []snapshots.Snapshot{})
		return
	}
	list, err := d.recording.snaps.List()
	if err != nil {
		jsonError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, list)
}

func (d *Daemon) handleGetSnapshot(w http.ResponseWriter, r *http.Request) {
	if d.recording.snaps == nil {
		jsonError(w, http.StatusNotFound, "snapshots: none")
		return
	}
	jpg, snap, err := d.recording.snaps.Get(r.PathValue("id"))
	if err != nil {
		jsonError(w, http.StatusNotFound, err.Error())
		return
	}
	w.Header().Set("Content-Type", "image/jpeg")
	w.Header().Set("X-Camd-Captured", snap.Time.UTC().Format(time.RFC3339Nano))
	w.Write(jpg)
}

func (d *Daemon) handleDeleteSnapshot(w http.ResponseWriter, r *http.Request) {
	if d.recording.snaps == nil {
		jsonError(w, http.StatusNotFound, "snapshots: none")
		return
	}
	if err := d.recording.snaps.Delete(r.PathValue("id")); err != nil {
		jsonError(w, http.StatusNotFound, err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// handleEvents lists the event log (?from, ?to, ?kind, ?limit), newest
// first.
func (d *Daemon) handleEvents(w http.ResponseWriter, r *http.Request) {
	if d.recording.events == nil {
		jsonError(w, http.StatusServiceUnavailable, "events: not available")
		return
	}
	q := r.URL.Query()
	var from, to time.Time
	var err error
	if s := q.Get("from"); s != "" {
		if from, err = parseTime(s, time.Now()); err != nil {
			jsonError(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	if s := q.Get("to"); s != "" {
		if to, err = parseTime(s, time.Now()); err != nil {
			jsonError(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	limit, _ := strconv.Atoi(q.Get("limit"))
	list, err := d.recording.events.List(from, to, q.Get("kind"), min(max(limit, 0), 1000))
	if err != nil {
		jsonError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, list)
}
