package recordings

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"

	"go.etcd.io/bbolt"

	"github.com/camd-project/camd/storage"
	"github.com/camd-project/camd/storage/volume"
)

// dropPrefix keys, in the catalog's recordings bucket, the deletions of a
// stream not finished yet: "drop/" + stream (uint32 BE) → the numbers of
// the volumes that may still hold its fragments (JSON).
var dropPrefix = []byte("drop/")

func dropKey(stream uint32) []byte {
	return binary.BigEndian.AppendUint32(bytes.Clone(dropPrefix), stream)
}

// DeleteStream deletes every recording of stream (an NVR's camera the
// owner removed with its recordings), and returns from how many volumes
// it deleted them (cut out of, or deleted whole). The stream must no longer be recorded. It
// fails only when the catalog cannot list the deletion: then nothing
// was deleted.
//
// The catalog first drops the stream's spans from the volumes' records
// and lists the deletion as pending, with the volumes it concerns, in one
// transaction: from then on neither the timeline nor a clip finds the
// stream. Then each volume loses the stream's fragments in one bbolt
// transaction of its own (volume.DeleteStream: a power cut leaves all of
// them or none, never a broken volume); a closed volume that held
// nothing else is deleted whole, as retention would, and gives its file
// back to the quota at once. The deletion is then listed as done. A
// crash, an error of the card or a volume an export is reading leaves it
// pending: it is finished at the next start (after recovery, which may
// have rebuilt the stream's spans from a volume: they are dropped again),
// at the next new volume, or at the next DeleteStream.
//
// In a volume that holds other streams too, the freed pages stay in the
// file: the volume being written fills them with its next fragments; a
// closed one keeps its size until the ring reuses its file. Quarantined
// volumes are left alone.
func (s *Store) DeleteStream(stream uint32) (int, error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.isClosed() {
		return 0, ErrClosed
	}
	// Its next volume, made beforehand, goes with it (deleteFrom).
	s.dropPrepared(stream)
	if err := s.startDeletion(stream); err != nil {
		return 0, err
	}
	n, _ := s.finishDeletions() // what fails is left pending, and logged
	return n, nil
}

// startDeletion drops stream's spans from the index and lists its
// deletion as pending, with the volumes it concerns (those whose spans
// show it, and those whose spans are to be rebuilt), in one catalog
// transaction. The caller holds writeMu.
func (s *Store) startDeletion(stream uint32) error {
	s.mu.Lock()
	var ids []uint64
	var changed []*vol
	for _, r := range s.vols {
		// An empty volume of the stream's own (the next one, made
		// beforehand: prepareNext) goes with the stream.
		has := slices.ContainsFunc(r.Spans, func(sp Span) bool { return sp.Stream == stream }) ||
			(r.Stream == stream && len(r.Spans) == 0)
		if r.State == stateQuarantined || r.State == stateCreating || (!has && !r.Rescan) {
			continue
		}
		ids = append(ids, r.ID)
		c := copyVol(r)
		c.Spans = slices.DeleteFunc(c.Spans, func(sp Span) bool { return sp.Stream == stream })
		changed = append(changed, c)
	}
	s.mu.Unlock()
	pending, err := s.pendingDeletions()
	if err != nil {
		return err
	}
	ids = mergeIDs(pending[stream], ids)
	if len(ids) == 0 {
		return nil
	}
	err = s.cat.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(storage.BucketRecordings)
		if err := putRecords(b, changed); err != nil {
			return err
		}
		buf, err := json.Marshal(ids)
		if err != nil {
			return err
		}
		return b.Put(dropKey(stream), buf)
	})
	if err != nil {
		return fmt.Errorf("%w: %w", errCatalog, err)
	}
	for _, c := range changed {
		s.replace(c)
	}
	s.log.Info("recordings: deleting a stream's recordings", "stream", stream, "volumes", len(ids))
	return nil
}

// mergeIDs returns the volume numbers of a and b, sorted, once each.
func mergeIDs(a, b []uint64) []uint64 {
	ids := slices.Concat(a, b)
	slices.Sort(ids)
	return slices.Compact(ids)
}

// pendingDeletions reads the deletions not finished yet: stream → the
// volumes that may still hold it.
func (s *Store) pendingDeletions() (map[uint32][]uint64, error) {
	pending := map[uint32][]uint64{}
	err := s.cat.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(storage.BucketRecordings).Cursor()
		for k, v := c.Seek(dropPrefix); k != nil && bytes.HasPrefix(k, dropPrefix); k, v = c.Next() {
			var ids []uint64
			if len(k) != len(dropPrefix)+4 || json.Unmarshal(v, &ids) != nil {
				s.log.Warn("recordings: unreadable pending deletion", "key", fmt.Sprintf("%x", k))
				continue
			}
			pending[binary.BigEndian.Uint32(k[len(dropPrefix):])] = ids
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errCatalog, err)
	}
	return pending, nil
}

// finishDeletions deletes the fragments of every pending deletion from
// the volumes it lists, and lists what is left of it (nothing, once
// done). It returns the volumes done, and the first error met. The
// caller holds writeMu.
func (s *Store) finishDeletions() (int, error) {
	pending, err := s.pendingDeletions()
	if err != nil {
		return 0, err
	}
	total, still := 0, false
	var first error
	for stream, ids := range pending {
		var left []uint64
		for _, id := range ids {
			err := s.deleteFrom(stream, id)
			if err == nil {
				total++
			} else {
				s.log.Warn("recordings: cannot delete a stream from a volume yet", "stream", stream, "volume", id, "err", err)
				first = cmpFirst(first, err)
				left = append(left, id)
			}
		}
		err := s.cat.Update(func(tx *bbolt.Tx) error {
			b := tx.Bucket(storage.BucketRecordings)
			if len(left) == 0 {
				return b.Delete(dropKey(stream))
			}
			buf, err := json.Marshal(left)
			if err != nil {
				return err
			}
			return b.Put(dropKey(stream), buf)
		})
		if err != nil {
			first = cmpFirst(first, fmt.Errorf("%w: %w", errCatalog, err))
			still = true
		}
		if len(left) == 0 {
			s.log.Info("recordings: a stream's recordings are deleted", "stream", stream)
		} else {
			still = true
		}
	}
	s.mu.Lock()
	s.pendingDrops = still
	s.mu.Unlock()
	return total, first
}

func cmpFirst(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// errPinned: an export or a playback reads the volume; the deletion
// waits for it.
var errPinned = errors.New("recordings: volume being read")

// deleteFrom deletes stream's fragments from volume id, and its spans
// from the volume's record (a start may have rebuilt them): the whole
// volume when it is closed and holds nothing else. A volume gone (deleted
// by retention meanwhile) holds nothing.
func (s *Store) deleteFrom(stream uint32, id uint64) error {
	s.mu.Lock()
	i := slices.IndexFunc(s.vols, func(r *vol) bool { return r.ID == id })
	if i < 0 {
		s.mu.Unlock()
		return nil
	}
	r := copyVol(s.vols[i])
	r.Spans = slices.DeleteFunc(r.Spans, func(sp Span) bool { return sp.Stream == stream })
	pinned := s.pins[id] > 0
	s.mu.Unlock()
	w := s.writers[r.Stream]
	if w != nil && w.v.ID() == id && r.Stream == stream && !pinned {
		// The stream's own volume being written (the stream is no
		// longer recorded): deleted whole, as a closed one.
		s.closeActive(stream)
		r.State, w = stateClosed, nil
	}
	switch {
	case r.State == stateQuarantined || r.State == stateCreating:
		return nil
	case (r.State == stateClosed || r.State == stateReady) && len(r.Spans) == 0 && !r.Rescan && !pinned:
		s.removeVolume(r)
		return nil
	}
	var err error
	size := r.Bytes
	if w != nil && w.v.ID() == id {
		_, err = w.v.DeleteStream(stream)
		if r.Stream == stream {
			w.init = nil
		}
		size = w.v.Size()
	} else if pinned {
		return errPinned
	} else {
		err = deleteInFile(filepath.Join(s.opts.Dir, r.File), stream, volume.Options{MaxSize: max(s.volumeSize, r.Bytes), NoSync: s.opts.NoSync})
	}
	if err != nil {
		return err
	}
	s.mu.Lock()
	if cur := slices.IndexFunc(s.vols, func(v *vol) bool { return v.ID == id }); cur >= 0 {
		// Spans appended meanwhile (the active volume) are kept.
		s.vols[cur].Spans = slices.DeleteFunc(s.vols[cur].Spans, func(sp Span) bool { return sp.Stream == stream })
		s.vols[cur].Bytes = size
		r = copyVol(s.vols[cur])
	}
	s.mu.Unlock()
	return s.saveRecords([]*vol{r}, nil)
}

// deleteInFile deletes stream's fragments from the volume in path, not
// being written.
func deleteInFile(path string, stream uint32, opts volume.Options) error {
	v, err := volume.Open(path, opts)
	if err != nil {
		return err
	}
	_, err = v.DeleteStream(stream)
	if cerr := v.Close(); err == nil && cerr != nil {
		err = cerr
	}
	return err
}
