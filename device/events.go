package device

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/camd-project/camd/device/events"
	"github.com/camd-project/camd/device/pairing"
	"github.com/camd-project/camd/storage"
	"github.com/camd-project/camd/storage/eventlog"
	"github.com/camd-project/camd/storage/recordings"
	"github.com/camd-project/camd/storage/snapshots"
)

// eventState is the event log and the bus that streams what it stores
// (docs/architecture.md, "Events"). Producers add to the log: recording
// (motion, the store's trouble), pairing (users and invitations),
// settings, the storage watch; the log tells the bus of each event once
// it is stored, in ID order.
type eventState struct {
	log    *eventlog.Log
	bus    *events.Bus
	logger *slog.Logger
}

func openEvents(cat *storage.Catalog, deviceID string, log *slog.Logger) *eventState {
	bus := events.New(events.Options{})
	return &eventState{
		log:    eventlog.New(cat, eventlog.Options{Camera: deviceID, Notify: bus.Publish}),
		bus:    bus,
		logger: log,
	}
}

// add stores an event. An event that cannot be stored is logged: it
// never fails what it tells of.
func (es *eventState) add(e eventlog.Event) {
	if _, err := es.log.Add(e); err != nil {
		es.logger.Warn("camd: an event was not stored", "type", e.Kind, "err", err)
	}
}

// userChanged stores pairing's changes of who may use the camera
// (pairing.Options.Notify).
func (es *eventState) userChanged(pe pairing.Event) {
	u := pe.User
	e := eventlog.Event{Kind: pe.Kind, Data: map[string]string{}}
	set := func(k, v string) {
		if v != "" {
			e.Data[k] = v
		}
	}
	switch pe.Kind {
	case pairing.EventPaired:
		e.Message = fmt.Sprintf("%s paired as %s", u.Name, u.Role)
	case pairing.EventRenamed:
		e.Message = fmt.Sprintf("%s renamed %s", pe.OldName, u.Name)
		set("old_name", pe.OldName)
	case pairing.EventRevoked:
		e.Message = fmt.Sprintf("%s revoked", u.Name)
		if pe.Reason != "" {
			e.Message += ": " + pe.Reason
		}
		set("reason", pe.Reason)
	case pairing.EventInvited, pairing.EventInvitationCancelled:
		what := "made"
		if pe.Kind == pairing.EventInvitationCancelled {
			what = "cancelled"
		}
		e.Message = fmt.Sprintf("invitation for a new %s %s", pe.Role, what)
		set("role", pe.Role.String())
		set("expires", pe.Expires.UTC().Format(time.RFC3339))
	}
	if u.ID != "" {
		set("user", u.ID)
		set("name", u.Name)
		set("role", u.Role.String())
	}
	set("invitation", pe.Invitation)
	set("by", pe.By)
	es.add(e)
}

// settingsChanged stores that an owner changed settings: which keys
// (sorted), and who.
func (es *eventState) settingsChanged(keys []string, by pairing.User) {
	keys = slices.Sorted(slices.Values(keys))
	es.add(eventlog.Event{
		Kind:    events.SettingsChanged,
		Message: "settings changed: " + strings.Join(keys, ", "),
		Data:    map[string]string{"keys": strings.Join(keys, ","), "by": by.ID, "by_name": by.Name},
	})
}

// eventsView is the event log as the API shows it: a motion event whose
// snapshot is gone (deleted by an owner, or forgotten to make room) says
// so (SnapshotMissing). It is checked when the events are read, so no
// event ever points to a snapshot that is gone without saying so,
// whatever removed it.
type eventsView struct {
	log   *eventlog.Log
	snaps *snapshots.Store
}

// Query selects events as eventlog.Log.Query does, marking the
// snapshots that are gone.
func (v eventsView) Query(q eventlog.Query) ([]eventlog.Event, error) {
	evs, err := v.log.Query(q)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range evs {
		if e.Snapshot != "" {
			ids = append(ids, e.Snapshot)
		}
	}
	if len(ids) == 0 {
		return evs, nil
	}
	have, err := v.snaps.Have(ids...)
	if err != nil {
		return nil, err
	}
	for i, e := range evs {
		evs[i].SnapshotMissing = e.Snapshot != "" && !have[e.Snapshot]
	}
	return evs, nil
}

// LastID is the newest event's ID.
func (v eventsView) LastID() (uint64, error) { return v.log.LastID() }

// storageCheck is how often the storage watch looks at the recordings'
// file system.
const storageCheck = 30 * time.Second

// storageWatch tells the owner when the recordings' file system is
// nearly full (storage.nearly_full): checked every storageCheck, told
// once, and again only after it had room again.
type storageWatch struct {
	stats  func() recordings.Stats // *recordings.Store's
	events *eventState
	every  time.Duration
	full   bool // told, not yet with room again
}

// nearlyFull reports whether the file system cannot hold what the
// recordings still take before their ring starts overwriting the oldest
// (their quota less what they hold) plus one volume, and whether it has
// room again (twice that margin free), for a store that is recording.
// A store at its quota needs only the margin: it reuses its own space.
func nearlyFull(st recordings.Stats) (full, room bool) {
	need := max(st.Quota-st.Bytes, 0) + st.VolumeSize
	return st.FreeBytes < need, st.FreeBytes >= need+st.VolumeSize
}

// run checks until ctx ends.
func (w *storageWatch) run(ctx context.Context) {
	t := time.NewTicker(w.every)
	defer t.Stop()
	for {
		w.check()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (w *storageWatch) check() {
	st := w.stats()
	if st.Paused != "" {
		return // the store says what is wrong itself (recording.paused)
	}
	full, room := nearlyFull(st)
	switch {
	case full && !w.full:
		w.full = true
		w.events.add(eventlog.Event{
			Kind:    events.StorageNearlyFull,
			Message: fmt.Sprintf("storage nearly full: %d MiB free, recordings hold %d MiB of a %d MiB quota", st.FreeBytes>>20, st.Bytes>>20, st.Quota>>20),
			Data: map[string]string{
				"free_bytes": strconv.FormatInt(st.FreeBytes, 10), "bytes": strconv.FormatInt(st.Bytes, 10),
				"quota_bytes": strconv.FormatInt(st.Quota, 10),
			},
		})
	case room:
		w.full = false
	}
}
