package device

import (
	"context"
	"errors"
	"fmt"
	"image"
	"log/slog"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/camd-project/camd/board"
	"github.com/camd-project/camd/device/events"
	"github.com/camd-project/camd/device/settings"
	"github.com/camd-project/camd/media"
	"github.com/camd-project/camd/media/export"
	"github.com/camd-project/camd/media/motion"
	"github.com/camd-project/camd/media/recorder"
	"github.com/camd-project/camd/media/snapshot"
	"github.com/camd-project/camd/storage"
	"github.com/camd-project/camd/storage/card"
	"github.com/camd-project/camd/storage/eventlog"
	"github.com/camd-project/camd/storage/recordings"
	"github.com/camd-project/camd/storage/snapshots"
)

// RecordingConfig says where camd records and how much it keeps
// (docs/storage.md). The mode and the motion sensitivity are settings
// (recording_mode, motion_sensitivity), changed while camd runs.
type RecordingConfig struct {
	// Path holds the recording volumes (default DATA/recordings): on an
	// SD card, the card's mount point or a directory on it.
	Path string `yaml:"path"`
	// Quota bounds what the recordings use: a size ("4GiB") or a share of
	// the file system ("80%").
	Quota string `yaml:"quota"`
	// VolumeSize bounds each volume file (1MiB to 512MiB).
	VolumeSize string `yaml:"volume_size"`
	// RequireMount says Path is on a card: recordings go there only while
	// a file system other than the device's own (the root's, the data
	// directory's) is mounted at Path or above it; while none is,
	// recording pauses ("no card") and nothing is written, not even
	// Path's directories. Default: on when Path is outside the data
	// directory.
	RequireMount *bool `yaml:"require_mount"`
	// FsckCommand checks and repairs the card (POST
	// /api/v1/storage/check): a program and its arguments, to which the
	// card's block device is appended. Empty: by file system, fsck.vfat
	// -a, fsck.exfat -y or e2fsck -p.
	FsckCommand []string `yaml:"fsck_command"`
	// FormatCommand formats the card (POST /api/v1/storage/format), the
	// device appended. Empty: mkfs.exfat above 32 GiB, mkfs.vfat -F 32
	// up to it.
	FormatCommand []string `yaml:"format_command"`
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
		return badValue("recording.quota", strconv.Quote(rc.Quota), `a size such as "4GiB" or a share such as "80%"`)
	}
	if n, err := recordings.ParseSize(rc.VolumeSize); err != nil || n < recordings.MinVolumeSize || n > 512<<20 {
		return badValue("recording.volume_size", strconv.Quote(rc.VolumeSize), "1MiB to 512MiB (bbolt maps whole files: 32-bit boards allow 1 to 2 GB)")
	}
	if rc.PreRoll < 0 || rc.PreRoll > time.Minute {
		return badValue("recording.pre_roll", rc.PreRoll, "0s to 1m")
	}
	if rc.PostRoll < time.Second || rc.PostRoll > 10*time.Minute {
		return badValue("recording.post_roll", rc.PostRoll, "1s to 10m")
	}
	for _, c := range []struct {
		field string
		argv  []string
	}{{"recording.fsck_command", rc.FsckCommand}, {"recording.format_command", rc.FormatCommand}} {
		if len(c.argv) > 0 && c.argv[0] == "" {
			return badValue(c.field, fmt.Sprintf("%q", c.argv), "a program and its arguments, e.g. [fsck.vfat, -a]; the card's device is added last")
		}
	}
	for _, r := range rc.MotionRegions {
		if err := (motion.Options{Regions: []motion.Region{{X: r[0], Y: r[1], W: r[2], H: r[3]}}}).Validate(); err != nil {
			return badValue("recording.motion_regions", fmt.Sprint(r), "[x, y, width, height] within 0 to 1")
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
	stills   *stills
	snaps    *snapshots.Store
	events   *eventlog.Log
	// playbacks are recordings played to WebRTC viewers.
	playbacks *playbacks
	// card checks and formats the card the recordings are on; nil when
	// they are not on one (recording.require_mount).
	card *cardOps
	live *liveSource // whose raw pictures motion and snapshots take
	log  *slog.Logger

	tasks  chan func() // catalog writes, in order, off the media path
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.Mutex
	spans map[uint64]uint64 // recorder span → event

	// The pause in force, as the store's events told it: on the task
	// goroutine only.
	pausedFor string
	pausedAt  time.Time
}

// stream is the recording stream number of the camera's own video.
const stream = 1

// openRecording opens the recordings and prepares the recorder, which
// records what hub carries. Trouble with the card never stops camd:
// recording pauses with an event.
func openRecording(cfg Config, cat *storage.Catalog, evlog *eventlog.Log, hub *media.Hub, live *liveSource, s settings.Settings, log *slog.Logger) (*recordingState, error) {
	rc := cfg.Recording
	dir := recordingDir(cfg)
	quota, _ := recordings.ParseQuota(rc.Quota)
	volSize, _ := recordings.ParseSize(rc.VolumeSize)
	rs := &recordingState{
		events:    evlog,
		playbacks: newPlaybacks(log),
		live:      live,
		log:       log,
		tasks:     make(chan func(), 64),
		spans:     map[uint64]uint64{},
	}
	opts := recordings.Options{
		Dir: dir, VolumeSize: volSize, Quota: quota, Logger: log, EraseMark: filepath.Join(cfg.Data, resetCard),
		Notify: func(e recordings.Event) {
			at := time.Now()
			rs.later(func() { rs.storeEvent(e, at) })
		},
	}
	var sd *card.Card
	if requireMount(cfg) {
		sd = card.New(card.Options{Path: dir, Internal: []string{cfg.Data}})
		opts.Card = sd
	}
	var err error
	if rs.store, err = recordings.Open(cat, opts); err != nil {
		return nil, err
	}
	if sd != nil {
		rs.card = &cardOps{store: rs.store, card: sd, events: rs.events, fsck: rc.FsckCommand, format: rc.FormatCommand, log: log}
	}
	// A damaged file is moved aside; one that cannot be read stops camd
	// with the error and is left as it is.
	if rs.snaps, err = snapshots.Open(filepath.Join(cfg.Data, snapshotsFile), snapshots.Options{}); err != nil {
		rs.close()
		return nil, err
	}
	if rs.snaps.Quarantined != "" {
		log.Warn("camd: snapshots file was damaged; moved aside", "moved_to", rs.snaps.Quarantined)
	}
	rs.rec = recorder.New(hub, rs.store, recorder.Options{
		Stream: stream, Mode: recorder.Mode(s.RecordingMode),
		PreRoll: rc.PreRoll, PostRoll: rc.PostRoll,
		OnSpan: rs.onMotionSpan, Logger: log,
		// A doorbell's missed call keeps its clip whatever the mode.
		PreRollWhenOff: hasDoorbell(cfg.Board),
	})
	rs.grab = &snapshot.Grabber{}
	rs.stills = &stills{grab: rs.grab}
	if argv := cfg.Passthrough.SnapshotCommand; len(argv) > 0 {
		rs.stills.cmd = &snapshot.Command{Argv: argv, Keyframe: func() ([]byte, time.Time) {
			if k := hub.LastKeyframe(); k != nil {
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
		rs.close()
		return nil, err
	}
	rs.attachRaw()
	return rs, nil
}

// settingsChanged follows the recording mode and the motion sensitivity,
// and hands the raw pictures of a rebuilt source to snapshots and motion
// detection.
func (rs *recordingState) settingsChanged(before, after settings.Settings) {
	if before.RecordingMode != after.RecordingMode {
		rs.rec.SetMode(recorder.Mode(after.RecordingMode))
	}
	if before.MotionSensitivity != after.MotionSensitivity {
		rs.detector.SetSensitivity(after.MotionSensitivity)
	}
	rs.attachRaw() // a rebuilt source starts without it
}

// pir is motion from the board's PIR sensor.
func (rs *recordingState) pir(active bool) {
	if rs == nil {
		return // a daemon built without recording (tests of the board)
	}
	rs.rec.SetMotion("pir", active, time.Now())
}

// activity reports whether the camera records now and whether the card
// fails, for the status LED.
func (rs *recordingState) activity() (recording, cardFailing bool) {
	if rs == nil {
		return false, false
	}
	return rs.rec.Stats().Recording, rs.store.Paused() != nil
}

// rawSetter is a source that shows its raw pictures (synthetic, capture).
type rawSetter interface{ SetRaw(media.RawFunc) }

// attachRaw hands the raw pictures of the current source to snapshots and
// motion detection.
func (rs *recordingState) attachRaw() {
	if s, ok := rs.live.current().(rawSetter); ok {
		s.SetRaw(rs.rawPicture)
	}
}

func (rs *recordingState) rawPicture(pic *image.YCbCr, at time.Time) {
	rs.grab.Offer(pic, at)
	if rs.rec.Mode() != recorder.Off {
		rs.detector.Offer(pic, at)
	}
}

// later runs f on the recording's task goroutine: catalog writes wait
// there, in order, instead of on the media path.
func (rs *recordingState) later(f func()) {
	select {
	case rs.tasks <- f:
	default:
		rs.log.Warn("camd: event log behind; an event was dropped")
	}
}

// storeEvent adds an event of the store (a pause, a resume, a damaged
// volume) that happened at at. A resume says what it recovered from:
// the reason of the pause it ends, and for how long recording was
// paused.
func (rs *recordingState) storeEvent(se recordings.Event, at time.Time) {
	e := eventlog.Event{Time: at, Kind: se.Kind, Message: se.Message, Data: se.Data}
	switch se.Kind {
	case events.RecordingPaused:
		if rs.pausedFor == "" {
			rs.pausedAt = at
		}
		rs.pausedFor = se.Data["reason"]
	case events.RecordingResumed:
		if rs.pausedFor != "" {
			if e.Data == nil {
				e.Data = map[string]string{}
			}
			e.Data["recovered_from"] = rs.pausedFor
			e.Data["paused_seconds"] = strconv.FormatFloat(at.Sub(rs.pausedAt).Seconds(), 'f', 1, 64)
		}
		rs.pausedFor = ""
	}
	if _, err := rs.events.Add(e); err != nil {
		rs.log.Warn("camd: an event was not stored", "type", e.Kind, "err", err)
	}
}

// motionStillWait bounds how long a motion event waits for its
// snapshot; past it, the event is stored without one.
const motionStillWait = 5 * time.Second

// hasDoorbell reports whether the board names a doorbell input.
func hasDoorbell(name string) bool {
	if name == "sim" {
		return true
	}
	p, err := board.LoadProfile(name)
	return err == nil && p.Doorbell != nil
}

// A call's clip: from callClipBefore before the press to callClipAfter
// after it (docs/calls.md).
const (
	callClipBefore = 2 * time.Second
	callClipAfter  = 8 * time.Second
)

// keepCall keeps what the camera saw of a call that began at at: its
// clip, recorded whatever the mode (recorder.Force), and a snapshot taken
// on the task goroutine, whose ID (or "") goes to done there. The clip is
// returned (nil while the store is paused).
func (rs *recordingState) keepCall(at time.Time, done func(snapshot string)) *eventlog.Clip {
	rs.rec.Force(at.Add(-callClipBefore), at.Add(callClipAfter))
	rs.later(func() {
		id := ""
		if rs.stills.Available() {
			ctx, cancel := context.WithTimeout(context.Background(), motionStillWait)
			jpg, taken, err := rs.stills.JPEG(ctx, 0)
			cancel()
			if err == nil {
				if snap, err := rs.snaps.Save(jpg, snapshots.Snapshot{Time: taken, Cause: "doorbell", Share: snapshots.Motion}); err == nil {
					id = snap.ID
				}
			}
		}
		done(id)
	})
	if rs.store.Paused() != nil {
		return nil
	}
	return &eventlog.Clip{From: at.Add(-callClipBefore), To: at.Add(callClipAfter)}
}

// onMotionSpan records a motion span as an event with a snapshot taken
// when it starts and, when the recorder keeps it, its clip; its end
// completes that event and is an event of its own (motion.end).
func (rs *recordingState) onMotionSpan(sp recorder.Span) {
	if sp.End.IsZero() {
		rs.log.Info("camd: motion", "cause", sp.Cause)
		rs.later(func() {
			e := eventlog.Event{Time: sp.Start, Kind: events.Motion, Message: "motion (" + sp.Cause + ")", Data: map[string]string{"cause": sp.Cause}}
			// Asked here, not in OnSpan: the recorder calls that with its
			// lock held.
			if rs.rec.Mode() != recorder.Off && rs.store.Paused() == nil {
				e.Clip = &eventlog.Clip{From: sp.Start}
			}
			if rs.stills.Available() {
				// Normally the next raw picture, tens of milliseconds; a
				// loaded camera may take seconds, and an event without its
				// picture is worth less than one a little late.
				ctx, cancel := context.WithTimeout(context.Background(), motionStillWait)
				jpg, at, err := rs.stills.JPEG(ctx, 0)
				cancel()
				if err == nil {
					if snap, err := rs.snaps.Save(jpg, snapshots.Snapshot{Time: at, Cause: "motion", Share: snapshots.Motion}); err == nil {
						e.Snapshot = snap.ID
					}
				}
			}
			id, err := rs.events.Add(e)
			if err == nil {
				rs.mu.Lock()
				rs.spans[sp.ID] = id
				rs.mu.Unlock()
			}
		})
		return
	}
	rs.log.Info("camd: motion ended", "cause", sp.Cause, "seconds", sp.End.Sub(sp.Start).Seconds())
	rs.later(func() {
		rs.mu.Lock()
		id, ok := rs.spans[sp.ID]
		delete(rs.spans, sp.ID)
		rs.mu.Unlock()
		if !ok {
			return
		}
		end := eventlog.Event{Time: sp.End, Kind: events.MotionEnd, Message: "motion ended (" + sp.Cause + ")",
			Data: map[string]string{"cause": sp.Cause, "start": strconv.FormatUint(id, 10)}}
		rs.events.Update(id, func(e *eventlog.Event) {
			e.End = sp.End
			if e.Clip != nil {
				e.Clip.To = sp.End
			}
			end.Snapshot, end.Clip = e.Snapshot, e.Clip
		})
		rs.events.Add(end)
	})
}

// start runs the recorder and the event writer until ctx ends (or
// close).
func (rs *recordingState) start(ctx context.Context) {
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
}

// close stops the recorder, letting it store what it holds, and closes
// the files. It is safe to call twice.
func (rs *recordingState) close() {
	rs.playbacks.close()
	if rs.cancel != nil {
		rs.cancel()
	}
	rs.wg.Wait()
	rs.store.Close()
	rs.snaps.Close() // nil-safe
}

// stills takes snapshots: from the raw pictures when the source shows
// them, else with the snapshot command.
type stills struct {
	grab *snapshot.Grabber
	cmd  *snapshot.Command // nil unless passthrough.snapshot_command is set
}

// Raw reports whether the source shows its raw pictures.
func (s *stills) Raw() bool { return s.grab.Offered() > 0 }

// Available reports whether a snapshot can be taken.
func (s *stills) Available() bool { return s.Raw() || s.cmd != nil }

var errNoStills = errors.New("device: no raw pictures and no snapshot command")

// JPEG takes a snapshot of the current picture.
func (s *stills) JPEG(ctx context.Context, quality int) ([]byte, time.Time, error) {
	switch {
	case s.Raw():
		return s.grab.JPEG(ctx, quality)
	case s.cmd != nil:
		return s.cmd.JPEG(ctx, quality)
	}
	return nil, time.Time{}, errNoStills
}

// exports opens recordings as MP4 files: the store hands out a range's
// fragments, media/export makes them one file.
type exports struct{ store *recordings.Store }

// Export opens the recordings of stream from from to to; the caller
// closes the file, which frees the store's reader slot.
func (e exports) Export(stream uint32, from, to time.Time) (*export.File, error) {
	c, err := e.store.Clip(stream, from, to)
	if err != nil {
		return nil, err
	}
	return export.New(c)
}
