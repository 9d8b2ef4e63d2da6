package device

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/camd-project/camd/device/events"
	"github.com/camd-project/camd/storage/card"
	"github.com/camd-project/camd/storage/eventlog"
	"github.com/camd-project/camd/storage/recordings"
)

// How long a check or a format of the card may run before it is killed:
// a full check of a large, slow card takes minutes.
const (
	checkTimeout  = 15 * time.Minute
	formatTimeout = 10 * time.Minute
)

// Events of the card's check and format.
const (
	eventCardChecked   = events.RecordingCardChecked
	eventCardFormatted = events.RecordingCardFormatted
)

// requireMount reports whether the recordings' directory is on a card
// (recording.require_mount; by default, when recording.path is outside
// the data directory).
func requireMount(cfg Config) bool {
	if rm := cfg.Recording.RequireMount; rm != nil {
		return *rm
	}
	return cfg.Recording.Path != "" && !within(cfg.Recording.Path, cfg.Data)
}

// within reports whether path is dir or below it.
func within(path, dir string) bool {
	p, err1 := filepath.Abs(path)
	d, err2 := filepath.Abs(dir)
	if err1 != nil || err2 != nil {
		return false
	}
	rel, err := filepath.Rel(d, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

// cardOps checks and formats the card for the API: the store lets go of
// the card meanwhile, and recording resumes once it is mounted again.
// Live view is not touched. One runs at a time.
type cardOps struct {
	store         *recordings.Store
	card          *card.Card
	events        *eventlog.Log
	fsck, format  []string
	log           *slog.Logger
	checkTimeout  time.Duration // zero: checkTimeout
	formatTimeout time.Duration // zero: formatTimeout
}

// Device is the card's block device, as the confirmation of a format
// names it ("" when no card on a block device was seen).
func (o *cardOps) Device() string {
	m, ok := o.card.Known()
	if !ok {
		return ""
	}
	return m.Source
}

// Check unmounts the card, checks and repairs it with the configured
// command (or the file system's), and mounts it again.
func (o *cardOps) Check(ctx context.Context) (card.Result, error) {
	release, err := o.store.Hold("checking")
	if err != nil {
		return card.Result{}, err
	}
	defer release(false)
	res, err := o.card.Check(ctx, o.fsck, orDefault(o.checkTimeout, checkTimeout))
	o.report(eventCardChecked, "checked", res, err)
	return res, err
}

// Format formats the card whose device the owner confirmed, and mounts
// it again: every recording on it is lost.
func (o *cardOps) Format(ctx context.Context, device string) (card.Result, error) {
	if dev := o.Device(); dev != device {
		return card.Result{}, fmt.Errorf("%w: the card is now %q, not %q", card.ErrNoCard, dev, device)
	}
	release, err := o.store.Hold("formatting")
	if err != nil {
		return card.Result{}, err
	}
	res, err := o.card.Format(ctx, o.format, orDefault(o.formatTimeout, formatTimeout))
	o.report(eventCardFormatted, "formatted", res, err)
	// A format that did not finish may have left some of the volumes:
	// the store looks.
	release(err == nil && res.ExitCode == 0)
	return res, err
}

// orDefault is d, or def if d is zero.
func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// report logs what a check or format did and adds it to the event log.
func (o *cardOps) report(kind, did string, res card.Result, err error) {
	data := map[string]string{"device": res.Device, "outcome": res.Outcome, "exit_code": strconv.Itoa(res.ExitCode),
		"mounted": strconv.FormatBool(res.Mounted), "fs_type": res.FSType, "command": strings.Join(res.Command, " ")}
	msg := fmt.Sprintf("camd: card %s: %s", did, res.Outcome)
	if err != nil {
		data["error"] = err.Error()
		msg = fmt.Sprintf("camd: card not %s: %v", did, err)
	} else if res.Error != "" {
		data["error"] = res.Error
	}
	o.log.Warn(msg, "event", kind, "data", data)
	if _, err := o.events.Add(eventlog.Event{Kind: kind, Message: msg, Data: data}); err != nil {
		o.log.Warn("camd: cannot log an event", "kind", kind, "err", err)
	}
}
