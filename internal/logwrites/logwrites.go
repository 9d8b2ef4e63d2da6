package logwrites

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Flags of an entry.
const (
	Flush    = 1 << 0 // a cache flush: everything logged before it was durable
	FUA      = 1 << 1 // a write that bypassed the cache
	Discard  = 1 << 2 // a discard (trim): no data follows
	Mark     = 1 << 3 // a mark the writer put in the log
	Metadata = 1 << 4 // a write the file system called metadata (Linux only)
	known    = Flush | FUA | Discard | Mark | Metadata
)

const (
	magic   = 0x6a736677736872
	version = 1
	// DefaultSectorSize is QEMU's log sector size, assumed for a log
	// whose super block was not written yet.
	DefaultSectorSize = 512
)

// ErrFormat is returned for a log that is not in the dm-log-writes format.
var ErrFormat = errors.New("logwrites: not a write log")

// Entry is one logged request.
type Entry struct {
	// Sector is where the write starts and Sectors how long it is, in the
	// log's sectors (Log.SectorSize).
	Sector, Sectors uint64
	Flags           uint64
	// data is where the written bytes start in the log.
	data int64
}

// Log is a write log, read whole: entries hold positions, not data.
type Log struct {
	// SectorSize is the log's sector size in bytes (512 for QEMU's default).
	SectorSize int64
	// Committed is the super block's count of entries: those logged up to
	// the last flush that the writer completed.
	Committed int
	// Entries are every whole entry in the log, including those logged
	// after the last flush.
	Entries []Entry

	r io.ReaderAt
}

// Open reads the log's super block and the headers of all its entries.
// size is the log's length in bytes; an entry that does not fit in it
// (the writer was killed while logging it) ends the log.
func Open(r io.ReaderAt, size int64) (*Log, error) {
	if size == 0 {
		// Nothing was logged: the disk was never written.
		return &Log{SectorSize: DefaultSectorSize, r: r}, nil
	}
	var sb [28]byte
	if _, err := r.ReadAt(sb[:], 0); err != nil {
		return nil, fmt.Errorf("%w: super block: %v", ErrFormat, err)
	}
	count := binary.LittleEndian.Uint64(sb[16:])
	ss := int64(binary.LittleEndian.Uint32(sb[24:]))
	switch {
	case sb == [28]byte{}:
		// QEMU writes the super block at the first flush: none yet.
		ss = DefaultSectorSize
	case binary.LittleEndian.Uint64(sb[0:]) != magic:
		return nil, fmt.Errorf("%w: bad magic", ErrFormat)
	case binary.LittleEndian.Uint64(sb[8:]) != version:
		return nil, fmt.Errorf("%w: version %d", ErrFormat, binary.LittleEndian.Uint64(sb[8:]))
	}
	if ss < 32 || ss > 1<<20 || ss&(ss-1) != 0 {
		return nil, fmt.Errorf("%w: sector size %d", ErrFormat, ss)
	}
	l := &Log{SectorSize: ss, r: r}
	var h [32]byte
	for off := ss; off+ss <= size; {
		if _, err := r.ReadAt(h[:], off); err != nil {
			return nil, fmt.Errorf("logwrites: entry %d: %w", len(l.Entries), err)
		}
		e := Entry{
			Sector:  binary.LittleEndian.Uint64(h[0:]),
			Sectors: binary.LittleEndian.Uint64(h[8:]),
			Flags:   binary.LittleEndian.Uint64(h[16:]),
			data:    off + ss,
		}
		if e.Flags&^known != 0 || e.Sectors > uint64(size/ss) {
			break // past the end of what was logged
		}
		next := e.data
		if e.Flags&Discard == 0 {
			next += int64(e.Sectors) * ss
		}
		if next > size {
			break // torn: killed while logging it
		}
		l.Entries = append(l.Entries, e)
		off = next
	}
	if count > uint64(len(l.Entries)) {
		return nil, fmt.Errorf("%w: the super block counts %d entries, the log holds %d", ErrFormat, count, len(l.Entries))
	}
	l.Committed = int(count)
	return l, nil
}

// LastFlush returns the number of entries up to and including the last
// flush among the first n: replaying that many leaves the disk as a power
// cut after the n-th entry would on a disk that keeps only what was
// flushed. 0 means no flush.
func (l *Log) LastFlush(n int) int {
	for i := min(n, len(l.Entries)) - 1; i >= 0; i-- {
		if l.Entries[i].Flags&Flush != 0 {
			return i + 1
		}
	}
	return 0
}

// Writes counts the entries among the first n that change the disk
// (writes and discards, not flushes or marks).
func (l *Log) Writes(n int) int {
	w := 0
	for _, e := range l.Entries[:min(n, len(l.Entries))] {
		if e.Sectors > 0 {
			w++
		}
	}
	return w
}

// Apply writes entry i onto disk: its data, or zeros for a discard.
func (l *Log) Apply(disk io.WriterAt, i int) error {
	e := l.Entries[i]
	if e.Sectors == 0 {
		return nil
	}
	buf := make([]byte, int64(e.Sectors)*l.SectorSize)
	if e.Flags&Discard == 0 {
		if _, err := l.r.ReadAt(buf, e.data); err != nil {
			return fmt.Errorf("logwrites: entry %d: %w", i, err)
		}
	}
	if _, err := disk.WriteAt(buf, int64(e.Sector)*l.SectorSize); err != nil {
		return fmt.Errorf("logwrites: replaying entry %d: %w", i, err)
	}
	return nil
}

// Replay applies the first n entries, in order, onto disk, a copy of the
// disk the log started from.
func (l *Log) Replay(disk io.WriterAt, n int) error {
	for i := range min(n, len(l.Entries)) {
		if err := l.Apply(disk, i); err != nil {
			return err
		}
	}
	return nil
}

// Bytes is what the first n entries wrote to the disk, in bytes.
func (l *Log) Bytes(n int) int64 {
	var b int64
	for _, e := range l.Entries[:min(n, len(l.Entries))] {
		if e.Flags&Discard == 0 {
			b += int64(e.Sectors) * l.SectorSize
		}
	}
	return b
}

// Flushes counts the flushes among the first n entries.
func (l *Log) Flushes(n int) int {
	f := 0
	for _, e := range l.Entries[:min(n, len(l.Entries))] {
		if e.Flags&Flush != 0 {
			f++
		}
	}
	return f
}
