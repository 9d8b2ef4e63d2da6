package recordings

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/camd-project/camd/storage/card"
)

// cardWatch tells what the card that holds the volumes looks like now
// (*card.Card).
type cardWatch interface {
	State() card.State
}

// CardStatus is the card's state in Stats.
type CardStatus struct {
	card.State
	// Error says why the card cannot be written now ("" when it can).
	Error string `json:"error,omitempty"`
	// Busy says what is done to the card: "checking", "formatting".
	Busy string `json:"busy,omitempty"`
	// CamdBytes is what the store's files take on it (their blocks),
	// OthersBytes what other files do.
	CamdBytes   int64 `json:"camd_bytes"`
	OthersBytes int64 `json:"others_bytes"`
	// LastError is the last error of the card or of a write to it, kept
	// once it passed.
	LastError string `json:"last_error,omitempty"`
}

// errCardBusy pauses recording while the card is checked or formatted
// (Hold).
var errCardBusy = errors.New("recordings: the card is being checked or formatted")

// cardStatus is the card's state with the store's bytes; s.mu is held.
func (s *Store) cardStatus(camd int64) *CardStatus {
	cs := &CardStatus{State: s.card, Busy: s.held, CamdBytes: camd, LastError: s.lastErr}
	if s.card.Mounted {
		cs.OthersBytes = max(0, s.card.UsedBytes-camd)
	}
	if s.cardErr != nil {
		cs.Error = s.cardErr.Error()
	} else if s.card.Err != nil {
		cs.Error = s.card.Err.Error()
	}
	return cs
}

// pauseData is what a recording.paused event says besides its reason:
// the card's state, and for a full card how its room is shared.
func (s *Store) pauseData(err error) []string {
	kv := []string{"reason", reason(err), "error", err.Error()}
	if s.opts.Card != nil {
		// The card as it is now, not at the last poll: a write that
		// failed as read-only comes before the poll sees the kernel's
		// remount, and the event and the status say what the error says.
		st := s.opts.Card.State()
		if classify(err) == cardReadOnly && st.Mounted {
			st.ReadOnly = true // the journal aborted; the remount follows
		}
		s.mu.Lock()
		s.card = st
		s.mu.Unlock()
		kv = append(kv, "present", strconv.FormatBool(st.Present), "mounted", strconv.FormatBool(st.Mounted),
			"read_only", strconv.FormatBool(st.ReadOnly))
		for _, f := range [][2]string{{"mount_point", st.MountPoint}, {"device", st.Device}, {"fs_type", st.FSType}} {
			if f[1] != "" {
				kv = append(kv, f[0], f[1])
			}
		}
	}
	if classify(err) == cardFull {
		total, free, used, _ := fsSpace(s.opts.Dir)
		camd := s.allocated()
		kv = append(kv, "total_bytes", strconv.FormatInt(total, 10), "free_bytes", strconv.FormatInt(free, 10),
			"camd_bytes", strconv.FormatInt(camd, 10), "others_bytes", strconv.FormatInt(max(0, used-camd), 10))
	}
	return kv
}

// watchCard looks at the card every CardPoll until the store closes.
func (s *Store) watchCard() {
	t := time.NewTicker(s.opts.CardPoll)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.checkCard()
		}
	}
}

// checkCard looks at the card: gone (not mounted, its device removed,
// or the volume being written no longer on the file system mounted
// there: a lazy unmount, another card) or read-only, recording pauses
// with an event and the store lets go of its files; back, the store
// reconciles it with the catalog and recording resumes.
func (s *Store) checkCard() {
	s.cardMu.Lock()
	defer s.cardMu.Unlock()
	st := s.opts.Card.State()
	err := st.Err
	if err == nil {
		err = s.activeGone()
	}
	s.mu.Lock()
	s.card = st
	held, was, closed := s.held != "", s.cardErr, s.closed
	s.mu.Unlock()
	switch {
	case held || closed:
	case err != nil && (was == nil || classify(err) != classify(was)):
		s.cardLost(err)
	case err == nil && was != nil:
		s.cardBack()
	}
}

// activeGone reports an error when the file of a volume being written
// is no longer the one at its path: the card it is on was unmounted
// (lazily: the store could go on writing to it unseen) or replaced.
func (s *Store) activeGone() error {
	for _, fi := range s.writerFiles() {
		now, err := os.Stat(filepath.Join(s.opts.Dir, fi.Name()))
		if err == nil && os.SameFile(fi, now) {
			continue
		}
		if !slices.Contains(s.writerFiles(), fi) {
			continue // a rotation meanwhile
		}
		return fmt.Errorf("%w: %s is no longer on the file system mounted at %s", card.ErrNoCard, fi.Name(), s.opts.Dir)
	}
	return nil
}

// writerFiles returns the files of the volumes being written.
func (s *Store) writerFiles() []os.FileInfo {
	s.handleMu.RLock()
	defer s.handleMu.RUnlock()
	var files []os.FileInfo
	for _, w := range s.writers {
		if w.file != nil {
			files = append(files, w.file)
		}
	}
	return files
}

// cardLost pauses recording until the card is back, with an event, and
// lets go of the card.
func (s *Store) cardLost(err error) {
	s.mu.Lock()
	s.cardErr = err
	was := s.paused
	s.paused, s.lastErr = err, err.Error()
	s.mu.Unlock()
	if was == nil || reason(was) != reason(err) {
		s.notify(EventPaused, "recordings: recording paused: "+reason(err), s.pauseData(err)...)
	}
	s.letGo()
}

// letGo closes every file the store holds on the card, so that it can be
// unmounted (or a lazy unmount can finish): the clips' (their reads fail
// from then on) and the volume being written, whose spans are saved in
// the catalog. The next use of the card reconciles it with the catalog
// again: it may be another card, or one that was checked.
func (s *Store) letGo() {
	s.closeClips()
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if err := s.closeWriter(); err != nil {
		s.log.Warn("recordings: cannot save the recordings of the volume being written", "err", err)
	}
	s.recovered = false
}

// closeClips closes the clips being read.
func (s *Store) closeClips() {
	s.mu.Lock()
	clips := make([]*Clip, 0, len(s.clips))
	for c := range s.clips {
		clips = append(clips, c)
	}
	s.mu.Unlock()
	for _, c := range clips {
		c.Close()
	}
}

// cardBack reconciles the card that came back with the catalog, and
// resumes recording with an event; the card's errors meanwhile pause it
// as write errors do.
func (s *Store) cardBack() {
	s.writeMu.Lock()
	err := s.prepare(false)
	s.writeMu.Unlock()
	s.mu.Lock()
	s.cardErr, s.paused = nil, nil
	if classify(err) == noCard {
		s.cardErr, s.paused = err, err // gone again: the next look tells
	}
	mnt := s.card.MountPoint
	s.mu.Unlock()
	switch {
	case err == nil:
		s.notify(EventResumed, "recordings: recording resumed: the card is back", "mount_point", mnt)
	case classify(err) != noCard:
		s.pause(err)
	}
}

// Hold lets go of every file of the store on the card and keeps
// recording paused ("card busy") until release is called, so that the
// card can be unmounted, checked or formatted; what says what is done
// ("checking", "formatting"). Exports and playbacks being read end
// (their reads fail with ErrClosed) and new ones fail with ErrBusy.
// release(erased), for a card that was formatted, forgets every volume
// without reporting any missing; then the store looks at the card at
// once and records as soon as it is mounted and writable. A store
// without Options.Card cannot be held.
func (s *Store) Hold(what string) (release func(erased bool), err error) {
	if s.opts.Card == nil {
		return nil, errors.New("recordings: the recordings are not on a card")
	}
	s.cardMu.Lock()
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		s.cardMu.Unlock()
		return nil, ErrClosed
	case s.held != "":
		held := s.held
		s.mu.Unlock()
		s.cardMu.Unlock()
		return nil, fmt.Errorf("%w: the card is being %s", ErrBusy, held)
	}
	s.held = what
	s.mu.Unlock()
	s.cardMu.Unlock()
	s.cardLost(fmt.Errorf("%w: %s", errCardBusy, what))
	return func(erased bool) {
		if erased {
			s.forgetAll()
		}
		s.mu.Lock()
		s.held = ""
		s.mu.Unlock()
		s.checkCard()
	}, nil
}

// forgetAll drops every volume from the index: the card was formatted.
func (s *Store) forgetAll() {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.dropPrepared()
	s.mu.Lock()
	ids := make([]uint64, len(s.vols))
	for i, r := range s.vols {
		ids[i] = r.ID
	}
	s.vols = nil
	s.stats.Deleted += uint64(len(ids))
	s.mu.Unlock()
	if err := s.saveRecords(nil, ids); err != nil {
		s.mu.Lock()
		s.dropLater = append(s.dropLater, ids...)
		s.mu.Unlock()
		s.log.Warn("recordings: cannot drop the records of a formatted card; trying again with the next catalog update", "err", err)
	}
}
