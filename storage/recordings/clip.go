package recordings

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/camd-project/camd/storage/volume"
)

// lookback is how far before the start of a clip the store looks for the
// keyframe that playback must start from.
const lookback = 10 * time.Second

// Clip is the recording of a stream in a time range, held for reading:
// its fragments in time order as the index describes them (Parts), from
// the keyframe at or before the range's start, and their bytes on demand
// (Read), in any order, so that a file made of them (media/export) can
// serve any byte range. The store keeps bytes: what the fragments and
// their init segments hold is for their reader to interpret. The volumes
// a clip reads are held open until Close, so retention deleting them
// meanwhile does not cut a download. A Clip holds one of the store's
// reader slots (Options.MaxReaders) until Close. It is not safe for
// concurrent use, but the store may close it at any time: Store.Close
// closes the clips still open, and their reads fail from then on.
type Clip struct {
	Stream uint32
	// Start and End are the times the clip covers: Start is the keyframe
	// at or before the range's start, End the end of the last fragment.
	Start, End time.Time

	s     *Store
	parts []Part

	// mu lets Store.Close close the clip while it is read.
	mu     sync.Mutex
	pins   map[uint64]*os.File
	pinned []uint64 // the volumes counted in Store.pins
	ro     *volume.Volume
	roID   uint64
	closed bool
}

// Part is a fragment of a Clip as the index describes it; Clip.Read reads
// its bytes.
type Part struct {
	Start    time.Time
	Duration time.Duration
	// Key: playback can start here. Audio: it has audio samples.
	Key, Audio bool
	// Size is the length of the fragment's bytes.
	Size int
	// Init is the init segment in force for the fragment, nil if none
	// was stored. Parts share it: it must not be changed.
	Init []byte

	vol uint64
	key volume.Key
}

// End is when the fragment ends.
func (p Part) End() time.Time { return p.Start.Add(p.Duration) }

type candidate struct {
	id   uint64
	file string
}

// Clip prepares the range [from, to) of stream for reading. It fails with
// ErrRange for an empty or reversed range, ErrNoRecording when nothing
// was recorded in it, ErrTooLong when it holds more than
// Options.MaxExport of recording and ErrBusy when Options.MaxReaders
// clips are open. Close it.
func (s *Store) Clip(stream uint32, from, to time.Time) (*Clip, error) {
	from, to, err := CheckRange(from, to)
	if err != nil {
		return nil, err
	}
	select {
	case s.readers <- struct{}{}:
	default:
		return nil, fmt.Errorf("%w (%d); try again later", ErrBusy, cap(s.readers))
	}
	if s.isClosed() {
		<-s.readers
		return nil, ErrClosed
	}
	if held := s.heldFor(); held != "" {
		<-s.readers
		return nil, fmt.Errorf("%w: the card is being %s", ErrBusy, held)
	}
	var cands []candidate
	c := &Clip{Stream: stream, s: s, pins: map[uint64]*os.File{}}
	// Counted under the lock that lists them: no volume the clip reads
	// becomes the file of a new one (takeReusable).
	s.overlapping(stream, from.Add(-lookback), to, func(r *vol, _ Span) {
		if n := len(cands); n == 0 || cands[n-1].id != r.ID {
			cands = append(cands, candidate{r.ID, r.File})
			s.pins[r.ID]++
			c.pinned = append(c.pinned, r.ID)
		}
	})

	ok := false
	defer func() {
		if !ok {
			c.Close()
		}
	}()
	var all []Part
	inits := map[uint64][]volume.InitRecord{}
	for _, cd := range cands {
		f, err := os.Open(filepath.Join(s.opts.Dir, cd.file))
		if err != nil {
			continue // deleted since: its time is gone
		}
		c.pins[cd.id] = f
		err = c.withVolume(cd.id, func(v *volume.Volume) error {
			if inits[cd.id], err = v.Inits(stream); err != nil {
				return err
			}
			return v.Fragments(stream, from.Add(-lookback).UnixNano(), func(fr volume.Fragment) bool {
				if fr.Start >= to.UnixNano() {
					return false
				}
				all = append(all, Part{Start: time.Unix(0, fr.Start), Duration: fr.Duration,
					Key: fr.Flags&volume.Keyframe != 0, Audio: fr.Flags&volume.Audio != 0, Size: fr.Size, vol: cd.id, key: fr.Key})
				return true
			})
		})
		if err != nil {
			s.log.Warn("recordings: a volume could not be read for a clip", "file", cd.file, "err", err)
		}
	}
	slices.SortStableFunc(all, func(a, b Part) int { return cmp.Compare(a.key.Start, b.key.Start) })
	// A clock set back can leave overlapping fragments: keep time growing.
	kept := all[:0]
	for _, p := range all {
		if n := len(kept); n > 0 && p.Start.Before(kept[n-1].End().Add(-time.Millisecond)) {
			continue
		}
		kept = append(kept, p)
	}
	all = kept
	first := startIndex(all, from)
	if first < 0 {
		return nil, fmt.Errorf("%w: %s to %s", ErrNoRecording, from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	all = all[first:]

	var recorded time.Duration
	for i := range all {
		all[i].Init = initFor(inits[all[i].vol], all[i].key.Start)
		recorded += all[i].Duration
		if recorded > s.opts.MaxExport {
			return nil, fmt.Errorf("%w: the range holds more than %v of recordings; export at most %v at a time",
				ErrTooLong, s.opts.MaxExport, s.opts.MaxExport)
		}
	}
	if len(all) == 0 {
		return nil, fmt.Errorf("%w: %s to %s", ErrNoRecording, from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	c.parts = all
	c.Start, c.End = all[0].Start, all[len(all)-1].End()
	// Open clips are listed for Store.Close; one that a Close raced is
	// closed (deferred) before anyone reads it.
	s.mu.Lock()
	closed, held := s.closed, s.held
	if !closed && held == "" {
		s.clips[c] = struct{}{}
	}
	s.mu.Unlock()
	switch {
	case closed:
		return nil, ErrClosed
	case held != "":
		return nil, fmt.Errorf("%w: the card is being %s", ErrBusy, held)
	}
	ok = true
	return c, nil
}

// startIndex finds where playback of parts must start to show from: the
// keyframe fragment at or before it, reached without a gap.
func startIndex(parts []Part, from time.Time) int {
	j := sort.Search(len(parts), func(i int) bool { return parts[i].End().After(from) })
	if j == len(parts) {
		return -1
	}
	k := j
	for k > 0 && !parts[k].Key && !parts[k].Start.After(from) && parts[k].Start.Sub(parts[k-1].End()) <= mergeGap {
		k--
	}
	if parts[k].Key {
		return k
	}
	for ; j < len(parts); j++ {
		if parts[j].Key {
			return j
		}
	}
	return -1
}

// initFor returns the init segment in force at start.
func initFor(recs []volume.InitRecord, start int64) []byte {
	var in []byte
	for _, r := range recs {
		if r.Start > start {
			break
		}
		in = r.Data
	}
	return in
}

// Parts lists the clip's fragments in time order.
func (c *Clip) Parts() []Part { return c.parts }

// Read appends the bytes of part i to buf. A read that fails lets go of
// the volume it read (its mapping with it); the next one opens it again.
func (c *Clip) Read(i int, buf []byte) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return buf, ErrClosed
	}
	if i < 0 || i >= len(c.parts) {
		return buf, fmt.Errorf("recordings: part %d of a clip of %d", i, len(c.parts))
	}
	p := c.parts[i]
	n := len(buf)
	err := c.withVolume(p.vol, func(v *volume.Volume) error {
		var err error
		buf, err = v.Read(p.key, buf)
		return err
	})
	if err == nil && len(buf)-n != p.Size {
		err = fmt.Errorf("%w: fragment at %v is %d bytes, the index says %d", volume.ErrDamaged, p.Start, len(buf)-n, p.Size)
	}
	if err != nil {
		c.closeRO()
		return buf[:n], err
	}
	return buf, nil
}

// withVolume runs fn on the volume: the store's handle for the volume
// being written, a read-only one otherwise.
func (c *Clip) withVolume(id uint64, fn func(*volume.Volume) error) error {
	c.s.handleMu.RLock()
	for _, w := range c.s.writers {
		if w.v.ID() == id {
			defer c.s.handleMu.RUnlock()
			return fn(w.v)
		}
	}
	c.s.handleMu.RUnlock()
	if c.ro == nil || c.roID != id {
		c.closeRO()
		pin := c.pins[id]
		if pin == nil {
			return fmt.Errorf("%w: volume %d", volume.ErrNotFound, id)
		}
		v, err := volume.Open(pin.Name(), volume.Options{ReadOnly: true, File: pin, LockTimeout: 500 * time.Millisecond,
			Sequential: !c.s.isActiveRecord(id)})
		if err != nil {
			return err
		}
		c.ro, c.roID = v, id
	}
	err := fn(c.ro)
	if c.s.isActiveRecord(id) {
		// Never keep the writer's volume locked: it may want it back.
		c.closeRO()
	}
	return err
}

// heldFor says what is done to the card while Hold holds it, or "".
func (s *Store) heldFor() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held
}

func (s *Store) isActiveRecord(id uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.record(id)
	return r != nil && r.State == stateActive
}

func (c *Clip) closeRO() {
	if c.ro != nil {
		c.ro.Close()
		c.ro = nil
	}
}

// Close releases the volumes the clip holds and its reader slot. It is
// safe to call twice.
func (c *Clip) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	c.closeRO()
	for _, f := range c.pins {
		f.Close()
	}
	c.s.mu.Lock()
	delete(c.s.clips, c)
	for _, id := range c.pinned {
		if c.s.pins[id]--; c.s.pins[id] <= 0 {
			delete(c.s.pins, id)
		}
	}
	c.s.mu.Unlock()
	<-c.s.readers
	return nil
}
