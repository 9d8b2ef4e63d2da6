package recordings

import (
	"cmp"
	"errors"
	"io/fs"
	"path/filepath"
	"slices"
	"time"

	"github.com/camd-project/camd/storage/volume"
)

// The names camd gives the files in the volumes' directory are
// vol-<16 hex digits>.db. On FAT each also has a short name, VOL-00~5.DB
// or VO1A2B~1.DB (Linux's vfat makes them so), in a directory entry of
// its own beside the long name's: a power cut that keeps the one and
// loses the others leaves the file under its short name alone. Files
// with such names in the volumes' directory are taken for camd's too:
// the directory is camd's, no other program has files there.
const shortName = "[Vv][Oo]????~[1-9].[Dd][Bb]"

// isShortName reports whether name is the FAT short name of a volume
// file.
func isShortName(name string) bool {
	ok, _ := filepath.Match(shortName, name)
	return ok
}

// ownName reports whether name is one that camd gives its volume files,
// or FAT's short name of one.
func ownName(name string) bool {
	_, ok := parseVolFile(name)
	return ok || isShortName(name)
}

// create starts a new volume: in the file of the oldest volume when the
// volumes fill the quota (takeReusable), in a new file otherwise. The
// catalog first lists the volume as being made, in the file it will be
// made in (and drops the oldest volume when its file is reused): a power
// cut before the volume is whole leaves a file that the next start knows
// for camd's own and makes again (complete). Nothing in the file itself
// could tell: on FAT a new file's clusters hold whatever a deleted file
// left in them.
func (s *Store) create(stream uint32) error {
	for {
		r, reused, err := s.begin(stream, false)
		if err == nil {
			return s.completeWithRoom(r, fileOf(reused))
		}
		// The catalog is full, on the card's file system: camd's oldest
		// recordings go.
		if !s.roomHelps(err) || !s.deleteOldest() {
			return err
		}
	}
}

// begin lists a new volume of stream in the catalog as being made, and
// reports whether it is made in the file of another (victim). ahead: it
// is made before the stream's volume being written is full (prepareNext).
func (s *Store) begin(stream uint32, ahead bool) (r *vol, reused bool, err error) {
	s.mu.Lock()
	id := s.nextID
	s.nextID++
	old := s.takeReusable(ahead)
	s.mu.Unlock()
	r = &vol{ID: id, File: volFile(id), Stream: stream, State: stateCreating, Created: time.Now()}
	var drop []uint64
	if old != nil {
		r.File, r.Bytes = old.File, old.Bytes
		drop = []uint64{old.ID}
	}
	if err := s.saveRecords([]*vol{r}, drop); err != nil {
		if old != nil {
			s.mu.Lock()
			s.vols = append(s.vols, old)
			slices.SortFunc(s.vols, func(a, b *vol) int { return cmp.Compare(a.ID, b.ID) })
			s.stats.Deleted--
			s.mu.Unlock()
		}
		return nil, false, err
	}
	if old != nil {
		s.log.Debug("recordings: the oldest volume's file holds the next one", "file", old.File, "volume", old.ID, "first", old.first())
	}
	s.mu.Lock()
	s.vols = append(s.vols, r)
	s.mu.Unlock()
	return r, old != nil, nil
}

// completeWithRoom completes the volume being made (complete), deleting
// the oldest volumes while the card is too full for it: whoever filled
// the card, camd's own oldest recordings go first, and recording pauses
// only when none is left.
func (s *Store) completeWithRoom(r *vol, in fileKind) error {
	for {
		err := s.complete(r, in)
		if !s.roomHelps(err) || !s.deleteOldest() {
			return err
		}
		// A new file that failed was removed; made again below.
		in = leftFile
	}
}

// takeReusable takes the volume loop overwrite takes next (victim) out
// of the index when the next volume is to be made in its file: the
// volumes fill the quota (one more file would pass it), and that volume
// is closed, read by no clip and no larger than a volume. Its
// recordings go, as when retention deletes it. ahead: the volumes being
// written count as full, as they will be when the new one is written.
// The caller holds s.mu.
func (s *Store) takeReusable(ahead bool) *vol {
	if s.noReuse {
		return nil
	}
	used := int64(0)
	for _, v := range s.vols {
		if ahead && v.State == stateActive {
			used += max(v.Bytes, s.volumeSize)
		} else {
			used += v.Bytes
		}
	}
	if used+s.volumeSize <= s.quota {
		return nil
	}
	old := s.victim()
	if old == nil || old.State != stateClosed || s.pins[old.ID] > 0 || old.Bytes > s.volumeSize {
		return nil
	}
	s.vols = slices.DeleteFunc(s.vols, func(v *vol) bool { return v == old })
	s.stats.Deleted++
	return old
}

// victim returns the volume that loop overwrite takes next: the oldest
// volume not being written, made or ready of the stream furthest over its
// share of the quota (share), or nil when there is none. Each stream
// has volumes of its own, so that a busy camera of an NVR loops over its
// share while a quiet one keeps its history; a camera's own recording
// (one stream) loses its oldest volume, as ever. The caller holds s.mu.
func (s *Store) victim() *vol {
	used := map[uint32]int64{}
	oldest := map[uint32]*vol{}
	for _, r := range s.vols {
		used[r.Stream] += r.Bytes
		if !r.inUse() && oldest[r.Stream] == nil {
			oldest[r.Stream] = r
		}
	}
	var best *vol
	most := 0.0
	for st, r := range oldest {
		over := float64(used[st]) / s.share(st, used)
		if best == nil || over > most || (over == most && r.ID < best.ID) {
			best, most = r, over
		}
	}
	return best
}

// share is stream's share of the quota, a fraction: the one SetShare
// set, or an equal part of what those leave to the other streams that
// have volumes (used). The caller holds s.mu.
func (s *Store) share(stream uint32, used map[uint32]int64) float64 {
	if f, ok := s.shares[stream]; ok {
		return f
	}
	left, n := 1.0, 0
	for st := range used {
		if f, ok := s.shares[st]; ok {
			left -= f
		} else {
			n++
		}
	}
	return max(left, minShare) / float64(max(n, 1))
}

// minShare is what the streams without a share of their own split when
// the shares set leave them nothing.
const minShare = 0.01

// SetShare sets stream's share of the quota, a fraction in (0, 1]: once
// the volumes fill the quota, the stream furthest over its share loses
// its oldest volume first. 0 gives the stream back the default: an
// equal part of what the shares set leave to the streams without one.
func (s *Store) SetShare(stream uint32, share float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if share <= 0 {
		delete(s.shares, stream)
		return
	}
	s.shares[stream] = min(share, 1)
}

// complete makes the empty volume that the record r (being made, the
// newest) names (makeFile), and lists it as the volume being written
// (activate). On a failure the record stays, and the next attempt
// completes it.
func (s *Store) complete(r *vol, in fileKind) error {
	v, err := s.makeFile(r, in)
	if err != nil {
		return err
	}
	return s.activate(r, v)
}

// fileKind is what makeFile finds at a record's file name.
type fileKind int

const (
	// newFile: nothing; the file is created.
	newFile fileKind = iota
	// ringFile: the file of the ring's oldest volume (takeReusable), a
	// whole volume that was listed, so its name is on stable storage.
	ringFile
	// leftFile: whatever a creation that was cut short or failed left,
	// if anything; its name may never have reached the card.
	leftFile
)

// fileOf returns the file begin gave a record: the ring's (reused) or
// a new one.
func fileOf(reused bool) fileKind {
	if reused {
		return ringFile
	}
	return newFile
}

// makeFile makes the empty volume that the record r (being made) names,
// on stable storage with its name. A new file must not exist yet; any
// other is written again in place whatever a power cut left in it
// (volume.Reuse), or made anew if it is gone. The directory of a ring
// file is not fsynced (its name is durable: volume.Options.Named), one
// flush of the card fewer per volume in the ring.
func (s *Store) makeFile(r *vol, in fileKind) (*volume.Volume, error) {
	s.mu.Lock()
	size := max(s.volumeSize, r.Bytes)
	s.mu.Unlock()
	path := filepath.Join(s.opts.Dir, r.File)
	opts := volume.Options{MaxSize: size, NoSync: s.opts.NoSync, Named: in == ringFile}
	var v *volume.Volume
	var err error
	if in != newFile {
		v, err = volume.Reuse(path, r.ID, opts)
	}
	if in == newFile || errors.Is(err, fs.ErrNotExist) {
		opts.Named = false
		v, err = volume.Create(path, r.ID, opts)
	}
	if in == newFile && errors.Is(err, fs.ErrExist) {
		// Not a file of this store's making: its number is given up,
		// and the file left alone.
		s.forget(r)
	}
	return v, err
}

// activate lists the volume v that the record r names as the volume being
// written, closing the one before it in the same catalog transaction.
func (s *Store) activate(r *vol, v *volume.Volume) error {
	s.mu.Lock()
	var prev *vol
	for _, o := range s.vols {
		if o != r && o.Stream == r.Stream && o.State == stateActive && o.ID < r.ID {
			prev = copyVol(o)
			prev.State = stateClosed
		}
	}
	s.mu.Unlock()
	a := copyVol(r)
	a.State, a.Bytes, a.Created = stateActive, v.Size(), v.Created()
	changed := []*vol{a}
	if prev != nil {
		changed = append(changed, prev)
	}
	if err := s.saveRecords(changed, nil); err != nil {
		v.Close()
		return err
	}
	s.setActive(r.Stream, v)
	s.replace(a)
	if prev != nil {
		s.replace(prev)
	}
	s.log.Debug("recordings: new volume", "file", a.File, "volume", a.ID, "max_bytes", a.Bytes)
	return nil
}

// forget drops a record that was being made, from the index and the
// catalog.
func (s *Store) forget(r *vol) {
	s.mu.Lock()
	s.vols = slices.DeleteFunc(s.vols, func(v *vol) bool { return v == r })
	s.mu.Unlock()
	if err := s.saveRecords(nil, []uint64{r.ID}); err != nil {
		s.log.Warn("recordings: cannot drop the record of a volume not made", "file", r.File, "err", err)
	}
}
