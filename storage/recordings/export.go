package recordings

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	mcfmp4 "github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"

	"github.com/camd-project/camd/media/fmp4"
	"github.com/camd-project/camd/storage/volume"
)

// lookback is how far before the start of an export the store looks for
// the keyframe that playback must start from.
const lookback = 10 * time.Second

// Export is a time range of a stream as one MP4 file: the init segment
// followed by the fragments, renumbered and retimed to start at zero. Its
// size is known before it is read and it can be read from any offset, so
// it suits http.ServeContent (range requests). It is not safe for
// concurrent use; Close it.
type Export struct {
	// Start and End are the times the file covers: Start is the keyframe
	// at or before the range's start, End the end of the last fragment.
	Start, End time.Time
	// Truncated is true when the stream's tracks changed (audio turned on
	// or off) inside the range: the file stops at the change.
	Truncated bool

	s      *Store
	init   []byte
	parts  []part
	size   int64
	pos    int64
	shift  map[uint32]uint64
	pins   map[uint64]*os.File
	cur    int
	data   []byte
	ro     *volume.Volume
	roID   uint64
	closed bool
}

type part struct {
	vol  uint64
	frag volume.Fragment
	off  int64
}

type candidate struct {
	id   uint64
	file string
}

// Export prepares the range [from, to) of stream for reading. It fails
// with ErrRange for an empty or reversed range, ErrNoRecording when
// nothing was recorded in it and ErrTooLong when it holds more than
// Options.MaxExport of recording.
func (s *Store) Export(stream uint32, from, to time.Time) (*Export, error) {
	from, to, err := CheckRange(from, to)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	var cands []candidate
	for _, r := range s.vols {
		if r.State == stateQuarantined {
			continue
		}
		for _, sp := range r.Spans {
			if sp.Stream == stream && sp.End.After(from.Add(-lookback)) && sp.Start.Before(to) {
				cands = append(cands, candidate{r.ID, r.File})
				break
			}
		}
	}
	s.mu.Unlock()

	e := &Export{s: s, pins: map[uint64]*os.File{}, cur: -1}
	ok := false
	defer func() {
		if !ok {
			e.Close()
		}
	}()
	var all []part
	inits := map[uint64][]volume.InitRecord{}
	for _, c := range cands {
		f, err := os.Open(filepath.Join(s.opts.Dir, c.file))
		if err != nil {
			continue // deleted since: its time is gone
		}
		e.pins[c.id] = f
		err = e.withVolume(c.id, func(v *volume.Volume) error {
			if inits[c.id], err = v.Inits(stream); err != nil {
				return err
			}
			return v.Fragments(stream, from.Add(-lookback).UnixNano(), func(fr volume.Fragment) bool {
				if fr.Start >= to.UnixNano() {
					return false
				}
				all = append(all, part{vol: c.id, frag: fr})
				return true
			})
		})
		if err != nil {
			s.log.Warn("recordings: a volume could not be read for an export", "file", c.file, "err", err)
		}
	}
	slices.SortStableFunc(all, func(a, b part) int { return cmpI64(a.frag.Start, b.frag.Start) })
	// A clock set back can leave overlapping fragments: keep time growing.
	kept := all[:0]
	for _, p := range all {
		if n := len(kept); n > 0 && p.frag.Start < kept[n-1].frag.End()-int64(time.Millisecond) {
			continue
		}
		kept = append(kept, p)
	}
	all = kept
	first := startIndex(all, from.UnixNano())
	if first < 0 {
		return nil, fmt.Errorf("%w: %s to %s", ErrNoRecording, from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	all = all[first:]

	// One file holds one set of tracks: stop where it changes.
	sig := map[string]string{}
	var want string
	var recorded time.Duration
	for i, p := range all {
		in := initFor(inits[p.vol], p.frag.Start)
		if in == nil {
			all, e.Truncated = all[:i], true
			break
		}
		ts, ok := sig[string(in)]
		if !ok {
			ts = trackSignature(in)
			sig[string(in)] = ts
		}
		if i == 0 {
			want, e.init = ts, in
		} else if ts != want {
			all, e.Truncated = all[:i], true
			break
		}
		recorded += p.frag.Duration
		if recorded > s.opts.MaxExport {
			return nil, fmt.Errorf("%w: the range holds more than %v of recordings; export at most %v at a time",
				ErrTooLong, s.opts.MaxExport, s.opts.MaxExport)
		}
	}
	if len(all) == 0 || e.init == nil {
		return nil, fmt.Errorf("%w: %s to %s", ErrNoRecording, from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	e.parts = all
	off := int64(len(e.init))
	for i := range e.parts {
		e.parts[i].off = off
		off += int64(e.parts[i].frag.Size)
	}
	e.size = off
	e.Start = time.Unix(0, all[0].frag.Start)
	e.End = time.Unix(0, all[len(all)-1].frag.End())

	// Retime so that the earliest track of the first fragment starts at 0.
	data, err := e.read(e.parts[0])
	if err != nil {
		return nil, err
	}
	base, err := fmp4.BaseTimes(data)
	if err != nil {
		return nil, err
	}
	baseNs := int64(-1)
	for track, t := range base {
		ns := int64(t/uint64(timescale(track)))*1e9 + int64(t%uint64(timescale(track)))*1e9/int64(timescale(track))
		if baseNs < 0 || ns < baseNs {
			baseNs = ns
		}
	}
	e.shift = map[uint32]uint64{}
	for _, track := range []uint32{fmp4.VideoTrack, fmp4.AudioTrack} {
		ts := uint64(timescale(track))
		u := uint64(max(baseNs, 0))
		e.shift[track] = u/1e9*ts + u%1e9*ts/1e9
	}
	ok = true
	return e, nil
}

func timescale(track uint32) int64 {
	if track == fmp4.AudioTrack {
		return fmp4.AudioTimescale
	}
	return fmp4.VideoTimescale
}

func cmpI64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// startIndex finds where playback of parts must start to show from: the
// keyframe fragment at or before it, reached without a gap.
func startIndex(parts []part, from int64) int {
	j := sort.Search(len(parts), func(i int) bool { return parts[i].frag.End() > from })
	if j == len(parts) {
		return -1
	}
	k := j
	for k > 0 && parts[k].frag.Flags&volume.Keyframe == 0 && parts[k].frag.Start <= from &&
		parts[k].frag.Start-parts[k-1].frag.End() <= int64(mergeGap) {
		k--
	}
	if parts[k].frag.Flags&volume.Keyframe != 0 {
		return k
	}
	for ; j < len(parts); j++ {
		if parts[j].frag.Flags&volume.Keyframe != 0 {
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

// trackSignature names an init segment's tracks: ID, timescale and codec.
func trackSignature(in []byte) string {
	var init mcfmp4.Init
	if err := init.Unmarshal(bytes.NewReader(in)); err != nil {
		return "unreadable:" + err.Error()
	}
	var b strings.Builder
	for _, t := range init.Tracks {
		fmt.Fprintf(&b, "%d:%d:%T;", t.ID, t.TimeScale, t.Codec)
	}
	return b.String()
}

// withVolume runs fn on the volume: the store's handle for the volume
// being written, a read-only one otherwise.
func (e *Export) withVolume(id uint64, fn func(*volume.Volume) error) error {
	e.s.handleMu.RLock()
	if a := e.s.active; a != nil && a.ID() == id {
		defer e.s.handleMu.RUnlock()
		return fn(a)
	}
	e.s.handleMu.RUnlock()
	if e.ro == nil || e.roID != id {
		e.closeRO()
		pin := e.pins[id]
		if pin == nil {
			return fmt.Errorf("%w: volume %d", volume.ErrNotFound, id)
		}
		v, err := volume.Open(pin.Name(), volume.Options{ReadOnly: true, File: pin, LockTimeout: 500 * time.Millisecond,
			Sequential: !e.s.isActiveRecord(id)})
		if err != nil {
			return err
		}
		e.ro, e.roID = v, id
	}
	err := fn(e.ro)
	if e.s.isActiveRecord(id) {
		// Never keep the writer's volume locked: it may want it back.
		e.closeRO()
	}
	return err
}

func (s *Store) isActiveRecord(id uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.vols)
	return n > 0 && s.vols[n-1].ID == id && s.vols[n-1].State == stateActive
}

func (e *Export) closeRO() {
	if e.ro != nil {
		e.ro.Close()
		e.ro = nil
	}
}

// read returns part p's data, renumbered and retimed.
func (e *Export) read(p part) ([]byte, error) {
	var data []byte
	err := e.withVolume(p.vol, func(v *volume.Volume) error {
		var err error
		data, err = v.Read(p.frag.Key, e.data[:0])
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(data) != p.frag.Size {
		return nil, fmt.Errorf("%w: fragment at %v is %d bytes, the index says %d", volume.ErrDamaged,
			time.Unix(0, p.frag.Start), len(data), p.frag.Size)
	}
	e.data = data
	return data, nil
}

// Size is the length of the file in bytes.
func (e *Export) Size() int64 { return e.size }

// Fragments is the number of fragments in the file.
func (e *Export) Fragments() int { return len(e.parts) }

// Read reads the file.
func (e *Export) Read(p []byte) (int, error) {
	if e.closed {
		return 0, ErrClosed
	}
	if e.pos >= e.size {
		return 0, io.EOF
	}
	if e.pos < int64(len(e.init)) {
		n := copy(p, e.init[e.pos:])
		e.pos += int64(n)
		return n, nil
	}
	i := sort.Search(len(e.parts), func(i int) bool { return e.parts[i].off+int64(e.parts[i].frag.Size) > e.pos })
	if i != e.cur {
		e.cur = -1
		data, err := e.read(e.parts[i])
		if err != nil {
			return 0, err
		}
		if err := fmp4.Retime(data, uint32(i+1), func(track uint32) uint64 { return e.shift[track] }); err != nil {
			return 0, err
		}
		e.cur = i
	}
	n := copy(p, e.data[e.pos-e.parts[i].off:])
	e.pos += int64(n)
	return n, nil
}

// Seek moves the read offset.
func (e *Export) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += e.pos
	case io.SeekEnd:
		offset += e.size
	default:
		return 0, errors.New("recordings: bad whence")
	}
	if offset < 0 {
		return 0, errors.New("recordings: seek before the start")
	}
	e.pos = offset
	return offset, nil
}

// Close releases the volumes the export holds. It is safe to call twice.
func (e *Export) Close() error {
	if e.closed {
		return nil
	}
	e.closed = true
	e.closeRO()
	for _, f := range e.pins {
		f.Close()
	}
	return nil
}
