package logwrites

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// logBuilder writes a log as QEMU's blklogwrites does: entries from
// sector 1, the super block rewritten at every flush.
type logBuilder struct {
	buf     []byte
	entries uint64
}

const ss = 512

func newLog() *logBuilder { return &logBuilder{buf: make([]byte, ss)} }

func (b *logBuilder) entry(sector, sectors, flags uint64, data []byte) {
	h := make([]byte, ss)
	binary.LittleEndian.PutUint64(h[0:], sector)
	binary.LittleEndian.PutUint64(h[8:], sectors)
	binary.LittleEndian.PutUint64(h[16:], flags)
	b.buf = append(b.buf, h...)
	b.buf = append(b.buf, data...)
	b.entries++
	if flags&Flush != 0 {
		binary.LittleEndian.PutUint64(b.buf[0:], magic)
		binary.LittleEndian.PutUint64(b.buf[8:], version)
		binary.LittleEndian.PutUint64(b.buf[16:], b.entries)
		binary.LittleEndian.PutUint32(b.buf[24:], ss)
	}
}

func (b *logBuilder) write(sector uint64, fill byte, sectors int) {
	b.entry(sector, uint64(sectors), 0, bytes.Repeat([]byte{fill}, sectors*ss))
}

func (b *logBuilder) flush() { b.entry(0, 0, Flush, nil) }

// disk is an io.WriterAt over a byte slice.
type disk []byte

func (d disk) WriteAt(p []byte, off int64) (int, error) { return copy(d[off:], p), nil }

func TestReplayUpToTheLastFlush(t *testing.T) {
	b := newLog()
	b.write(2, 'a', 1)
	b.write(3, 'b', 2)
	b.flush()
	b.write(2, 'c', 1) // after the last flush: lost at a power cut
	b.entry(4, 1, Discard, nil)
	log, err := Open(bytes.NewReader(b.buf), int64(len(b.buf)))
	if err != nil {
		t.Fatal(err)
	}
	if len(log.Entries) != 5 || log.Committed != 3 {
		t.Fatalf("%d entries, %d committed", len(log.Entries), log.Committed)
	}
	if n := log.LastFlush(len(log.Entries)); n != 3 {
		t.Fatalf("last flush after %d entries", n)
	}
	if log.Writes(5) != 4 || log.Flushes(5) != 1 || log.Bytes(5) != 4*ss {
		t.Fatalf("writes %d, flushes %d, bytes %d", log.Writes(5), log.Flushes(5), log.Bytes(5))
	}
	d := disk(bytes.Repeat([]byte{'.'}, 6*ss))
	if err := log.Replay(d, log.LastFlush(len(log.Entries))); err != nil {
		t.Fatal(err)
	}
	want := string(bytes.Repeat([]byte{'.'}, 2*ss)) + string(bytes.Repeat([]byte{'a'}, ss)) +
		string(bytes.Repeat([]byte{'b'}, 2*ss)) + string(bytes.Repeat([]byte{'.'}, ss))
	if string(d) != want {
		t.Fatal("the replay up to the flush differs")
	}
	// Every entry: the later write and the discard (zeros).
	if err := log.Replay(d, len(log.Entries)); err != nil {
		t.Fatal(err)
	}
	if d[2*ss] != 'c' || d[4*ss] != 0 || d[3*ss] != 'b' {
		t.Fatalf("full replay: %q %q %q", d[2*ss], d[3*ss], d[4*ss])
	}
}

func TestTornEntryEndsTheLog(t *testing.T) {
	b := newLog()
	b.write(1, 'a', 1)
	b.flush()
	b.write(1, 'b', 4)
	torn := b.buf[:len(b.buf)-ss] // killed while logging the last write
	log, err := Open(bytes.NewReader(torn), int64(len(torn)))
	if err != nil {
		t.Fatal(err)
	}
	if len(log.Entries) != 2 {
		t.Fatalf("%d entries", len(log.Entries))
	}
}

func TestNoFlushYet(t *testing.T) {
	b := newLog()
	b.write(1, 'a', 1)
	log, err := Open(bytes.NewReader(b.buf), int64(len(b.buf)))
	if err != nil {
		t.Fatal(err)
	}
	if log.Committed != 0 || len(log.Entries) != 1 || log.LastFlush(1) != 0 {
		t.Fatalf("committed %d, %d entries", log.Committed, len(log.Entries))
	}
}

func TestEmptyLog(t *testing.T) {
	log, err := Open(bytes.NewReader(nil), 0)
	if err != nil || len(log.Entries) != 0 || log.LastFlush(0) != 0 {
		t.Fatalf("%v, %+v", err, log)
	}
}

func TestNotALog(t *testing.T) {
	buf := bytes.Repeat([]byte{1}, 4*ss)
	if _, err := Open(bytes.NewReader(buf), int64(len(buf))); !errors.Is(err, ErrFormat) {
		t.Fatalf("got %v", err)
	}
	b := newLog()
	b.write(1, 'a', 1)
	b.flush()
	binary.LittleEndian.PutUint64(b.buf[16:], 9) // counts entries it lacks
	if _, err := Open(bytes.NewReader(b.buf), int64(len(b.buf))); !errors.Is(err, ErrFormat) {
		t.Fatalf("got %v", err)
	}
}

func FuzzOpen(f *testing.F) {
	b := newLog()
	b.write(1, 'a', 1)
	b.flush()
	b.entry(3, 2, Discard, nil)
	f.Add(b.buf)
	f.Fuzz(func(t *testing.T, data []byte) {
		log, err := Open(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		d := make(disk, 1<<16)
		for i, e := range log.Entries {
			if int64(e.Sector+e.Sectors)*log.SectorSize > int64(len(d)) {
				continue
			}
			if err := log.Apply(d, i); err != nil {
				t.Fatal(err)
			}
		}
	})
}
