package api

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/camd-project/camd/media/export"
	"github.com/camd-project/camd/media/motion"
	"github.com/camd-project/camd/media/recorder"
	"github.com/camd-project/camd/media/whep"
	"github.com/camd-project/camd/storage/recordings"
)

// Recordings is the recorded video (docs/storage.md): its timeline,
// export as MP4, playback over WebRTC, the store's state, deletion, and
// motion triggered from outside the picture.
type Recordings struct {
	// Stream is the recording stream of the camera's own video.
	Stream   uint32
	Store    recordingStore  // *recordings.Store
	Exports  exporter        // *recordings.Store
	Recorder recorderControl // *recorder.Recorder
	Motion   motionStats     // *motion.Detector
	Stills   stillsState     // the daemon's snapshot takers
	Player   player          // the daemon's playbacks
	WHEP     feedSignalling  // *whep.Server
}

// recordingStore is the recordings' timeline, state and deletion.
type recordingStore interface {
	Timeline(stream uint32, from, to time.Time) (recordings.Timeline, error)
	Stats() recordings.Stats
	Delete(before time.Time) (volumes int, err error)
}

// exporter opens a range of recordings as one MP4 file; it fails with
// recordings.ErrRange, ErrTooLong, ErrNoRecording, or ErrBusy when too
// many are open.
type exporter interface {
	Export(stream uint32, from, to time.Time) (*export.File, error)
}

// recorderControl is the recorder's state and motion from outside.
type recorderControl interface {
	Stats() recorder.Stats
	Trigger(cause string, hold time.Duration)
}

// motionStats is motion detection's state.
type motionStats interface{ Stats() motion.Stats }

// stillsState says what the snapshots are taken from.
type stillsState interface {
	// Raw reports whether the source shows its raw pictures.
	Raw() bool
	// Available reports whether a snapshot can be taken at all.
	Available() bool
}

// player plays an export to a WebRTC viewer: it owns x from the call on,
// and the feed's hub carries the recording once the viewer is connected.
type player interface {
	Play(x *export.File) (whep.Feed, error)
}

// feedSignalling answers WHEP (draft-ietf-wish-whep) requests with a feed of the
// caller's.
type feedSignalling interface {
	HandleFeedOffer(w http.ResponseWriter, r *http.Request, feed whep.Feed)
	HandlePatch(w http.ResponseWriter, r *http.Request)
	HandleDelete(w http.ResponseWriter, r *http.Request)
}

func (a *Recordings) routes() []Route {
	return []Route{
		{"GET /api/v1/recordings", Viewer, a.handleTimeline},
		{"GET /api/v1/recordings/export", Viewer, a.handleExport},
		{"POST /api/v1/recordings/whep", Viewer, a.handlePlayback},
		{"PATCH /api/v1/recordings/whep/{id}", Viewer, a.WHEP.HandlePatch},
		{"DELETE /api/v1/recordings/whep/{id}", Viewer, a.WHEP.HandleDelete},
		{"GET /api/v1/recordings/status", Viewer, a.handleStatus},
		{"DELETE /api/v1/recordings", Owner, a.handleDelete},
		{"POST /api/v1/motion", Owner, a.handleMotionTrigger},
	}
}

// parseTime reads a time given to the API: RFC 3339, "now", a
// duration relative to now ("-60s", "-2h30m", "+5m"), or Unix seconds.
func parseTime(s string, now time.Time) (time.Time, error) {
	t, err := parseAnyTime(strings.TrimSpace(s), now)
	if err != nil {
		return time.Time{}, err
	}
	if t.After(latestTime) {
		return time.Time{}, fmt.Errorf("time %q is after the year 9999", s)
	}
	return t, nil
}

// latestTime is the last time camd takes: the end of year 9999, the last
// that RFC 3339 can write.
var latestTime = time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)

func parseAnyTime(s string, now time.Time) (time.Time, error) {
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
	// Unix seconds, with a fraction, up to the latest time camd takes:
	// checked before the conversion, which would wrap past it.
	if secs, err := strconv.ParseFloat(s, 64); err == nil && secs >= 0 && secs <= float64(latestTime.Unix()) {
		whole, frac := math.Modf(secs)
		return time.Unix(int64(whole), int64(frac*1e9)), nil
	}
	return time.Time{}, fmt.Errorf("time %q is not RFC 3339 (2025-06-01T08:00:00Z), now, a relative duration (-60s) or Unix seconds up to %d", s, latestTime.Unix())
}

// relative says whether a time given to the API depends on when it is
// read: "now", a duration, or nothing (a default).
func relative(s string) bool {
	s = strings.TrimSpace(s)
	return s == "" || s == "now" || s[0] == '-' || s[0] == '+'
}

// redirectRelative answers a request whose ?from or ?to is relative with
// 307 Temporary Redirect to the same request with both absolute (RFC 3339,
// UTC): every range request and resume of an export then reads the same
// bytes, and a playback offer (307 keeps the method and body) the same
// recording. It returns false, having answered nothing, for a request
// whose times are absolute already, and answers 400 for a time that does
// not parse.
func redirectRelative(w http.ResponseWriter, r *http.Request) bool {
	q := r.URL.Query()
	if !relative(q.Get("from")) && !relative(q.Get("to")) {
		return false
	}
	from, to, err := rangeParams(r)
	if err != nil {
		jsonError(w, http.StatusBadRequest, err.Error())
		return true
	}
	q.Set("from", from.UTC().Format(time.RFC3339Nano))
	q.Set("to", to.UTC().Format(time.RFC3339Nano))
	u := *r.URL
	u.RawQuery = q.Encode()
	// A playback's offer is read before the answer: a connection closed
	// after the answer with the offer unread is reset, and a client
	// still writing it (a loaded machine, Connection: close) gets a
	// broken pipe instead of the redirect.
	io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, whep.MaxBody))
	http.Redirect(w, r, u.RequestURI(), http.StatusTemporaryRedirect)
	return true
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

func (a *Recordings) ready(w http.ResponseWriter) bool {
	if a.Store == nil {
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
		// Each export or playback may map a whole volume: a 32-bit
		// board has room for a few at once.
		w.Header().Set("Retry-After", "5")
		jsonError(w, http.StatusTooManyRequests, err.Error())
	default:
		jsonError(w, http.StatusInternalServerError, err.Error())
	}
}

// TimelineAnswer is the answer of GET /api/v1/recordings.
type TimelineAnswer struct {
	From     time.Time         `json:"from"`
	To       time.Time         `json:"to"`
	Spans    []recordings.Span `json:"spans"`
	Gaps     []recordings.Span `json:"gaps"`
	Recorded float64           `json:"recorded_s"`
	Status   RecordingStatus   `json:"status"`
}

func (a *Recordings) handleTimeline(w http.ResponseWriter, r *http.Request) {
	a.timeline(w, r, a.Stream)
}

// timeline answers the spans and gaps of stream in the request's range.
func (a *Recordings) timeline(w http.ResponseWriter, r *http.Request, stream uint32) {
	if !a.ready(w) {
		return
	}
	from, to, err := rangeParams(r)
	if err != nil {
		jsonError(w, http.StatusBadRequest, err.Error())
		return
	}
	tl, err := a.Store.Timeline(stream, from, to)
	if err != nil {
		rangeError(w, err)
		return
	}
	writeJSON(w, TimelineAnswer{From: tl.From, To: tl.To, Spans: tl.Spans, Gaps: tl.Gaps,
		Recorded: tl.Recorded.Seconds(), Status: a.status()})
}

// openExport opens the recordings of stream in the request's ?from&to
// and sets the X-Camd-Start and X-Camd-End headers; on failure it
// answers and returns nil.
func (a *Recordings) openExport(w http.ResponseWriter, r *http.Request, stream uint32) *export.File {
	if !a.ready(w) {
		return nil
	}
	from, to, err := rangeParams(r)
	if err != nil {
		jsonError(w, http.StatusBadRequest, err.Error())
		return nil
	}
	x, err := a.Exports.Export(stream, from, to)
	if err != nil {
		rangeError(w, err)
		return nil
	}
	w.Header().Set("X-Camd-Start", x.Start.UTC().Format(time.RFC3339Nano))
	w.Header().Set("X-Camd-End", x.End.UTC().Format(time.RFC3339Nano))
	return x
}

// handleExport serves a range as one MP4 file, with range requests; a
// relative range is redirected to its absolute one first.
func (a *Recordings) handleExport(w http.ResponseWriter, r *http.Request) {
	a.export(w, r, a.Stream)
}

// export serves a range of stream as one MP4 file.
func (a *Recordings) export(w http.ResponseWriter, r *http.Request, stream uint32) {
	if redirectRelative(w, r) {
		return
	}
	x := a.openExport(w, r, stream)
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

// handlePlayback answers a WHEP offer (as POST /api/v1/whep)
// with a session that plays the recordings of ?from&to in real time from
// the keyframe at or before from; PATCH and DELETE go to
// /api/v1/recordings/whep/{id}. The session ends a second after the
// recording does. A relative range is redirected to its absolute one
// first.
func (a *Recordings) handlePlayback(w http.ResponseWriter, r *http.Request) {
	a.playback(w, r, a.Stream)
}

// playback answers a WHEP offer with a session that plays a range of
// stream.
func (a *Recordings) playback(w http.ResponseWriter, r *http.Request, stream uint32) {
	if redirectRelative(w, r) {
		return
	}
	x := a.openExport(w, r, stream)
	if x == nil {
		return
	}
	feed, err := a.Player.Play(x)
	if err != nil {
		jsonError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	a.WHEP.HandleFeedOffer(w, r, feed)
}

// RecordingStatus is the answer of GET /api/v1/recordings/status: the
// store's, the recorder's and motion detection's state.
type RecordingStatus struct {
	recordings.Stats
	Recorder recorder.Stats `json:"recorder"`
	Motion   motion.Stats   `json:"motion"`
	Dir      string         `json:"dir"`
	Raw      bool           `json:"raw_pictures"`
	// Snapshots: snapshots can be taken (raw pictures or a command).
	Snapshots bool `json:"snapshots"`
}

func (a *Recordings) status() RecordingStatus {
	return RecordingStatus{Stats: a.Store.Stats(), Recorder: a.Recorder.Stats(), Motion: a.Motion.Stats(),
		Raw: a.Stills.Raw(), Snapshots: a.Stills.Available()}
}

func (a *Recordings) handleStatus(w http.ResponseWriter, _ *http.Request) {
	if !a.ready(w) {
		return
	}
	writeJSON(w, a.status())
}

// handleDelete deletes the volumes whose recordings all end before
// ?before= (whole volumes only), or every recording with ?all=1.
func (a *Recordings) handleDelete(w http.ResponseWriter, r *http.Request) {
	if !a.ready(w) {
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
	n, err := a.Store.Delete(before)
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

func (a *Recordings) handleMotionTrigger(w http.ResponseWriter, r *http.Request) {
	if !a.ready(w) {
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
	a.Recorder.Trigger(t.Cause, time.Duration(t.Seconds*float64(time.Second)))
	writeJSON(w, a.Recorder.Stats())
}
