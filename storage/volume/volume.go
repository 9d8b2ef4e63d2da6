package volume

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/camd-project/camd/internal/durable"
)

// Format is the volume layout this build writes and reads.
const Format = 1

// DefaultMaxSize is the default bound of a volume file.
const DefaultMaxSize = 256 << 20

// Errors of volumes.
var (
	ErrNotVolume   = errors.New("volume: not a camd recording volume")
	ErrNewerFormat = errors.New("volume: written by a newer camd")
	ErrDamaged     = errors.New("volume: damaged")
	ErrFull        = errors.New("volume: full")
	ErrOrder       = errors.New("volume: fragment out of key order")
	ErrNotFound    = errors.New("volume: fragment not found")
	ErrReadOnly    = errors.New("volume: opened read-only")
	ErrLocked      = errors.New("volume: in use")
	ErrTooLarge    = errors.New("volume: fragment too large")
)

var (
	bucketMeta  = []byte("camd")
	bucketInits = []byte("inits")
	bucketFrags = []byte("frags")
	keyData     = []byte("m")
	magic       = []byte("camd recording volume")
)

// Options tune Create and Open. The zero value means defaults.
type Options struct {
	// MaxSize bounds the file (default 256 MiB, at least 1 MiB).
	MaxSize int64
	// ReadOnly opens for reading only (Open).
	ReadOnly bool
	// LockTimeout is how long to wait for another holder's lock
	// (default 2 s).
	LockTimeout time.Duration
	// NoSync skips fsync: only for tests and benchmarks of everything
	// else.
	NoSync bool
	// File, when set, is an open descriptor of the volume that Open reads
	// through (it keeps a volume readable after it was unlinked).
	File *os.File
	// Sequential, with ReadOnly, says the volume will be read in order
	// (an export of a volume no longer written): readahead stays on.
	// Otherwise it is turned off (see randomAccess).
	Sequential bool
	// Named, for Reuse, says the file's name is on stable storage
	// already: the file held a whole volume, made and listed before
	// (the ring's oldest). Its directory is then fsynced only if the
	// file must grow, which a full volume's file never does: one flush
	// of the card fewer per volume. Reuse completing a creation cut
	// short must not say so (the name may never have reached the card).
	Named bool
}

func (o Options) withDefaults() Options {
	if o.MaxSize <= 0 {
		o.MaxSize = DefaultMaxSize
	}
	o.MaxSize = max(o.MaxSize, 1<<20)
	if o.LockTimeout <= 0 {
		o.LockTimeout = 2 * time.Second
	}
	return o
}

// Key orders fragments: by stream, then start time.
type Key struct {
	Stream uint32
	// Start is Unix ns (not negative).
	Start int64
}

// KeySize is the length of an encoded key.
const KeySize = 12

// Bytes encodes the key big-endian, so that byte order is time order.
func (k Key) Bytes() []byte {
	b := make([]byte, KeySize)
	binary.BigEndian.PutUint32(b, k.Stream)
	binary.BigEndian.PutUint64(b[4:], uint64(max(k.Start, 0)))
	return b
}

// ParseKey decodes a key.
func ParseKey(b []byte) (Key, bool) {
	if len(b) != KeySize {
		return Key{}, false
	}
	start := binary.BigEndian.Uint64(b[4:])
	if start > 1<<62 {
		return Key{}, false
	}
	return Key{Stream: binary.BigEndian.Uint32(b), Start: int64(start)}, true
}

// Flags describe a fragment.
type Flags uint8

// Fragment flags.
const (
	// Keyframe: playback can start at this fragment.
	Keyframe Flags = 1 << iota
	// Audio: the fragment carries audio samples.
	Audio
)

// Fragment describes a stored fragment.
type Fragment struct {
	Key
	Duration time.Duration
	// Size is the length of the fragment's data.
	Size  int
	Flags Flags
}

// End is the Unix ns at which the fragment ends.
func (f Fragment) End() int64 { return f.Start + int64(f.Duration) }

// MaxFragment bounds a fragment's data, and MaxDuration its duration (they
// share the 64 bits of the bucket sequence: see pack).
const (
	MaxFragment = 64 << 20
	MaxDuration = (1<<27 - 1) * time.Microsecond
)

// pack stores size, duration and flags in a bucket's sequence number:
// bits 0-31 size, 32-58 duration in µs, 59-63 flags. The parent bucket
// holds it in the 16-byte bucket header beside the key, so listing a
// volume never reads the fragments' own pages.
func pack(f Fragment) uint64 {
	return uint64(uint32(f.Size)) | uint64(f.Duration/time.Microsecond)<<32 | uint64(f.Flags&0x1f)<<59
}

func unpack(k Key, seq uint64) Fragment {
	return Fragment{
		Key:      k,
		Size:     int(uint32(seq)),
		Duration: time.Duration(seq>>32&(1<<27-1)) * time.Microsecond,
		Flags:    Flags(seq >> 59),
	}
}

// Volume is one recording volume: a bbolt file of fragments.
type Volume struct {
	db       *bbolt.DB
	file     *os.File // bbolt's descriptor of the file
	base     uintptr  // where the mapping starts
	pageSize int
	path     string
	id       uint64
	created  time.Time
	readOnly bool
	noSync   bool
	maxSize  int64
	fat      bool // writable, on FAT: see grow
	// broken: abandoned after a panic that may have left bbolt's locks
	// held (see fault.go).
	broken atomic.Bool
	// using is held shared by every use of db, and exclusively by Close:
	// the mapping of a handle given up is removed only once nothing
	// reads it (see fault.go).
	using sync.RWMutex

	mu   sync.Mutex
	last map[uint32]Key // last key per stream (writable volumes)
}

// bboltOptions returns the options bbolt opens a volume with; the file
// it opens is stored in *file.
func bboltOptions(o Options, readOnly bool, file **os.File) *bbolt.Options {
	bo := &bbolt.Options{
		Timeout:  o.LockTimeout,
		ReadOnly: readOnly,
		// The freelist is written at every commit (one page). Without it
		// bbolt rebuilds it at open by walking the tree in a goroutine
		// that panics, out of reach of recover, on the damage it finds.
		NoFreelistSync: false,
		FreelistType:   bbolt.FreelistMapType,
		NoSync:         o.NoSync,
		NoGrowSync:     o.NoSync,
	}
	if !readOnly {
		bo.MaxSize = int(o.MaxSize)
		// Map the whole volume at once: the mapping never moves, so a
		// reader never holds up the writer's remap.
		bo.InitialMmapSize = int(o.MaxSize)
	}
	pinned := o.File
	bo.OpenFile = func(name string, flag int, mode os.FileMode) (*os.File, error) {
		if pinned != nil {
			name = fmt.Sprintf("/proc/self/fd/%d", pinned.Fd())
		}
		f, err := os.OpenFile(name, flag, mode)
		if err == nil && !readOnly {
			err = trimFAT(f)
			if err != nil {
				f.Close()
				f = nil
			}
		}
		if err == nil {
			if !readOnly || !o.Sequential {
				randomAccess(f)
			}
			*file = f
		}
		return f, err
	}
	return bo
}

// openVolume opens path with bbolt, as a Volume whose meta data is not
// read yet.
func openVolume(path string, o Options, readOnly bool) (*Volume, error) {
	var file *os.File
	var db *bbolt.DB
	// bbolt reads the meta pages and the freelist through its mapping
	// while it opens: a fault there loses the handle (see fault.go); its
	// file at least is closed, which releases its lock.
	panicked, err := guard(func() error {
		var err error
		db, err = bbolt.Open(path, 0o600, bboltOptions(o, readOnly, &file))
		return err
	}, func(r any) error {
		addr, fault := faultAddr(r)
		if file != nil {
			if fault {
				// The mapping goes with bbolt's handle, which the
				// panic lost: nothing else can ever unmap it.
				unmapFile(file, addr)
			}
			release(file)
		}
		if fault {
			return errFault(path, addr) // precheck let the file through
		}
		return fmt.Errorf("%w: %s: %v", ErrDamaged, path, r)
	})
	switch {
	case err == nil:
	case panicked:
		return nil, err
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("%w: %s", ErrLocked, path)
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrVersionMismatch):
		// bbolt calls a header it could not read invalid too (a new
		// volume on a card whose reads fail): read it again to tell.
		name := path
		if o.File != nil {
			name = fmt.Sprintf("/proc/self/fd/%d", o.File.Fd())
		}
		if rerr := probeHeader(name); rerr != nil {
			return nil, fmt.Errorf("volume: open %s: %w", path, rerr) // the card, not the file
		}
		return nil, fmt.Errorf("%w: %s: %w", ErrNotVolume, path, err)
	case isIOError(err):
		return nil, fmt.Errorf("volume: open %s: %w", path, err) // the card, not the file
	default:
		return nil, fmt.Errorf("%w: %s: %w", ErrDamaged, path, err)
	}
	if !readOnly {
		// Grow the file in steps: fewer truncate+fsync pairs, little slack.
		db.AllocSize = int(allocSize(o))
	}
	info := db.Info()
	if readOnly && o.Sequential {
		if fi, err := file.Stat(); err == nil {
			// bbolt asks for no readahead on its mapping (MADV_RANDOM):
			// an export would then read the card 4 KiB per page fault.
			sequentialMapping(info.Data, fi.Size())
		}
	}
	return &Volume{db: db, file: file, base: info.Data, pageSize: info.PageSize, path: path, readOnly: readOnly,
		noSync: o.NoSync, maxSize: o.MaxSize, fat: !readOnly && onFAT(file), last: map[uint32]Key{}}, nil
}

// evict drops a closed volume's pages from the page cache.
func evict(path string) {
	if f, err := os.Open(path); err == nil {
		dropCache(f)
		f.Close()
	}
}

// isIOError tells an error of the system (read-only file system, I/O
// error, missing file) from damage bbolt found in the file.
func isIOError(err error) bool {
	var pe *fs.PathError
	var errno syscall.Errno
	return errors.As(err, &pe) || errors.As(err, &errno)
}

// Check verifies a volume file without opening it for writing: a safe
// walk of its pages with ordinary reads (a damaged file can send bbolt's
// memory-mapped reads past the end of the file, which kills the process),
// then bbolt's own consistency check and camd's meta data. A file that is
// not bbolt, or bbolt without camd's meta data, is ErrNotVolume; anything
// else wrong is ErrDamaged.
func Check(path string, opts Options) error {
	opts = opts.withDefaults()
	// The pages the walk read stay in the page cache for bbolt's check:
	// it reads them through the mapping in a goroutine of its own, where
	// a page the card cannot serve would be a fault that nothing can
	// catch (see fault.go).
	defer evict(path)
	if err := classify(path, path, precheck(path, true)); err != nil {
		return err
	}
	v, err := open(path, opts, true)
	if err != nil {
		return err
	}
	err = v.Check()
	v.Close()
	return err
}

// classify turns precheck's verdict into ErrNotVolume (not even bbolt),
// ErrDamaged, or the I/O error itself.
func classify(path, checkPath string, err error) error {
	if err == nil {
		return nil
	}
	var ie *ioError
	if errors.As(err, &ie) {
		return fmt.Errorf("volume: %s: %w", path, ie.err)
	}
	if isForeign(checkPath) {
		return fmt.Errorf("%w: %s: %w", ErrNotVolume, path, err)
	}
	return fmt.Errorf("%w: %s: %w", ErrDamaged, path, err)
}

// isForeign reports whether path does not even start like a bbolt file.
func isForeign(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	b := make([]byte, pageHeaderSize+8)
	if _, err := f.ReadAt(b, 0); err != nil {
		return errors.Is(err, io.EOF) // short: not bbolt; unreadable: unknown
	}
	return ne.Uint32(b[pageHeaderSize:]) != bboltMagic
}

// Open opens an existing volume after Check's safe walk of its pages.
// Readers use ReadOnly; the writer opens only the newest volume.
func Open(path string, opts Options) (*Volume, error) {
	opts = opts.withDefaults()
	checkPath := path
	if opts.File != nil {
		checkPath = fmt.Sprintf("/proc/self/fd/%d", opts.File.Fd())
	}
	if err := classify(path, checkPath, precheck(checkPath, false)); err != nil {
		return nil, err
	}
	return open(path, opts, opts.ReadOnly)
}

func open(path string, opts Options, readOnly bool) (*Volume, error) {
	v, err := openVolume(path, opts, readOnly)
	if err != nil {
		return nil, err
	}
	err = v.view(func(tx *bbolt.Tx) error {
		m := tx.Bucket(bucketMeta)
		if m == nil || !bytes.Equal(m.Get([]byte("magic")), magic) {
			return ErrNotVolume
		}
		if f := m.Get([]byte("format")); len(f) != 1 || f[0] > Format {
			return ErrNewerFormat
		}
		if id := m.Get([]byte("id")); len(id) == 8 {
			v.id = binary.BigEndian.Uint64(id)
		}
		if c := m.Get([]byte("created")); len(c) == 8 {
			v.created = time.Unix(0, int64(binary.BigEndian.Uint64(c)))
		}
		if tx.Bucket(bucketInits) == nil || tx.Bucket(bucketFrags) == nil {
			return ErrDamaged
		}
		// Remember each stream's last key: appends must follow it.
		c := tx.Bucket(bucketFrags).Cursor()
		for k, _ := c.Last(); k != nil; {
			key, ok := ParseKey(k)
			if !ok {
				return fmt.Errorf("%w: bad key %x", ErrDamaged, k)
			}
			v.last[key.Stream] = key
			if key.Stream == 0 {
				break
			}
			c.Seek((Key{Stream: key.Stream}).Bytes())
			k, _ = c.Prev()
		}
		return nil
	})
	if err != nil {
		v.Close()
		switch {
		case isIOError(err):
			return nil, err // the card: leave the volume alone
		case errors.Is(err, ErrNotVolume), errors.Is(err, ErrNewerFormat), errors.Is(err, ErrDamaged):
			return nil, fmt.Errorf("%w: %s", err, path)
		}
		return nil, fmt.Errorf("%w: %s: %w", ErrDamaged, path, err)
	}
	return v, nil
}

// ID is the volume's number, given at Create.
func (v *Volume) ID() uint64 { return v.id }

// Path is the volume's file.
func (v *Volume) Path() string { return v.path }

// Created is when the volume was created.
func (v *Volume) Created() time.Time { return v.created }

// Size is the file's size in bytes.
func (v *Volume) Size() int64 {
	fi, err := os.Stat(v.path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// Growth is how many bytes the file grows by when n more bytes are
// appended: 0 while it has room (a volume file reused in place always
// has), else the next step of its growth (see grow).
func (v *Volume) Growth(n int) (int64, error) {
	var used int64
	if err := v.view(func(tx *bbolt.Tx) error { used = tx.Size(); return nil }); err != nil {
		return 0, err
	}
	fi, err := v.file.Stat()
	if err != nil {
		return 0, err
	}
	need := used + int64(n) + overhead
	if need <= fi.Size() {
		return 0, nil
	}
	return min(need+int64(v.db.AllocSize), v.maxSize) - fi.Size(), nil
}

// Fits reports whether n more bytes appended now would fit in the
// volume (Append's test for ErrFull), so that a caller can start the
// next volume while nothing waits for the card, rather than when the
// fragment that does not fit is due.
func (v *Volume) Fits(n int) (bool, error) {
	var used int64
	if err := v.view(func(tx *bbolt.Tx) error { used = tx.Size(); return nil }); err != nil {
		return false, err
	}
	return used+int64(n)+2*overhead <= v.maxSize, nil
}

// Last returns the last key appended for stream.
func (v *Volume) Last(stream uint32) (Key, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	k, ok := v.last[stream]
	return k, ok
}

// overhead is what a commit may add to the file besides the fragment: a
// partly filled last page and the copied-on-write leaf and branch pages.
const overhead = 64 << 10

// Append stores one fragment, and init when the stream's configuration
// changed (or this is the stream's first fragment in the volume), in one
// transaction, fsynced before it returns. Keys of a stream must grow.
// ErrFull means the fragment does not fit: start a new volume.
func (v *Volume) Append(f Fragment, data, init []byte) error {
	_, err := v.AppendBatch([]Item{{Fragment: f, Data: data, Init: init}})
	return err
}

// Item is a fragment to append with its data, and its init segment when
// the stream's configuration changed (nil otherwise).
type Item struct {
	Fragment
	Data, Init []byte
}

// perItem is what each fragment of a batch after the first may add to
// the file besides its bytes (overhead counts the first's): its last
// page partly filled, its entry in the parent's leaf.
const perItem = 8 << 10

// AppendBatch stores items in order in one transaction, fsynced before
// it returns: the card sees one commit (two fdatasyncs) for all of them.
// It returns how many it stored; the first n are durable, and the rest
// are not stored at all. err says why it stopped before the end:
// ErrFull when items[n] does not fit (the first n still do, and are
// stored: start a new volume for the rest), ErrOrder or ErrTooLarge for
// items[n] itself (the ones before it are stored). Any other error is
// the commit's, with n = 0: none is stored.
func (v *Volume) AppendBatch(items []Item) (n int, err error) {
	if v.readOnly {
		return 0, ErrReadOnly
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	// Each stream's keys grow: the items up to the first that would
	// break that (or is too large) go in.
	last := map[uint32]int64{}
	var stop error
	for i, it := range items {
		prev, ok := last[it.Stream]
		if k, had := v.last[it.Stream]; !ok && had {
			prev, ok = k.Start, true
		}
		switch {
		case len(it.Data) > MaxFragment || it.Duration > MaxDuration || it.Duration < 0:
			stop = fmt.Errorf("%w: %d bytes, %v", ErrTooLarge, len(it.Data), it.Duration)
		case ok && it.Start <= prev:
			stop = fmt.Errorf("%w: stream %d start %d after %d", ErrOrder, it.Stream, it.Start, prev)
		}
		if stop != nil {
			items = items[:i]
			break
		}
		last[it.Stream] = it.Start
	}
	if len(items) == 0 {
		return 0, stop
	}
	err = v.update(func(tx *bbolt.Tx) (grew bool, err error) {
		// Full when the fragments need more than the volume's size,
		// less a margin that keeps bbolt's own allocation (which also
		// counts what it copies) below the end of its mapping: the file
		// grows up to that size and no further, so that a file reused
		// in place (which has it) never grows. The fragments that fit
		// go in; the first that does not ends the batch.
		need := tx.Size() + overhead
		n = 0
		for i, it := range items {
			more := int64(len(it.Data) + len(it.Init))
			if i > 0 {
				more += perItem
			}
			if need+more+overhead > v.maxSize {
				break
			}
			need += more
			n++
		}
		if n == 0 {
			return false, ErrFull
		}
		if grew, err = v.grow(need); err != nil {
			return grew, err
		}
		for _, it := range items[:n] {
			key := it.Key.Bytes()
			if it.Init != nil {
				if err := tx.Bucket(bucketInits).Put(key, it.Init); err != nil {
					return grew, err
				}
			}
			b, err := tx.Bucket(bucketFrags).CreateBucket(key)
			if err != nil {
				return grew, err
			}
			if err := b.Put(keyData, it.Data); err != nil {
				return grew, err
			}
			f := it.Fragment
			f.Size = len(it.Data)
			if err := b.SetSequence(pack(f)); err != nil {
				return grew, err
			}
		}
		return grew, nil
	})
	if errors.Is(err, ErrFull) {
		return 0, err
	}
	if err != nil {
		return 0, fmt.Errorf("volume: append to %s: %w", v.path, err)
	}
	for _, it := range items[:n] {
		v.last[it.Stream] = it.Key
	}
	if n < len(items) {
		return n, ErrFull
	}
	return n, stop
}

// update runs fn in a write transaction, committed (fsynced) before it
// returns; fn reports whether it grew the file (grow). bbolt panics on
// some damage it finds while writing, and a page the card cannot serve
// faults: either way the handle is given up, as bbolt may still hold its
// writer's lock (see fault.go). The caller holds v.mu.
func (v *Volume) update(fn func(tx *bbolt.Tx) (grew bool, err error)) error {
	v.using.RLock()
	defer v.using.RUnlock()
	if err := v.usable(); err != nil {
		return err
	}
	if err := v.probeMeta(); err != nil {
		return err
	}
	grew := false
	panicked, err := v.guard(func() error {
		return v.db.Update(func(tx *bbolt.Tx) error {
			var err error
			grew, err = fn(tx)
			return err
		})
	})
	if panicked {
		v.abandon()
		return err
	}
	if err != nil && grew && !v.noSync {
		// The commit that was to make the new size durable (see grow)
		// failed: the size is made durable alone, or on FAT a cut
		// would leave the file's cluster chain longer than the file.
		v.file.Sync()
	}
	if errors.Is(err, berrors.ErrMaxSizeReached) {
		err = ErrFull
	}
	return err
}

// DeleteStream deletes every fragment and init segment of stream, in one
// transaction fsynced before it returns: a power cut leaves the volume
// with all of them or none, never a part. It returns how many fragments
// it deleted. Their pages go to the volume's freelist, where the
// volume's next appends take them (a closed volume keeps them until its
// file is reused); the file does not shrink.
func (v *Volume) DeleteStream(stream uint32) (int, error) {
	if v.readOnly {
		return 0, ErrReadOnly
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	n := 0
	err := v.update(func(tx *bbolt.Tx) (grew bool, err error) {
		// The copied leaf and branch pages may need room that the
		// pages freed here cannot give before the commit.
		if grew, err = v.grow(min(tx.Size()+overhead, v.maxSize)); err != nil {
			return grew, err
		}
		prefix := binary.BigEndian.AppendUint32(nil, stream)
		frags := tx.Bucket(bucketFrags)
		var keys [][]byte
		c := frags.Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			keys = append(keys, bytes.Clone(k))
		}
		for _, k := range keys {
			if err := frags.DeleteBucket(k); err != nil {
				return grew, fmt.Errorf("%w: fragment %x: %w", ErrDamaged, k, err)
			}
		}
		n = len(keys)
		inits := tx.Bucket(bucketInits)
		keys = keys[:0]
		c = inits.Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			keys = append(keys, bytes.Clone(k))
		}
		for _, k := range keys {
			if err := inits.Delete(k); err != nil {
				return grew, err
			}
		}
		return grew, nil
	})
	if err != nil {
		return 0, fmt.Errorf("volume: delete stream %d from %s: %w", stream, v.path, err)
	}
	delete(v.last, stream)
	return n, nil
}

// Fragments calls fn for stream's fragments in time order, starting with
// the last one that starts at or before from (it may cover from), until fn
// returns false.
func (v *Volume) Fragments(stream uint32, from int64, fn func(Fragment) bool) error {
	return v.view(func(tx *bbolt.Tx) error {
		frags := tx.Bucket(bucketFrags)
		c := frags.Cursor()
		target := Key{Stream: stream, Start: from}.Bytes()
		// Position on the last key at or before target (or the first key).
		k, _ := c.Seek(target)
		if k == nil {
			k, _ = c.Last()
		} else if !bytes.Equal(k, target) {
			if pk, _ := c.Prev(); pk != nil {
				k = pk
			} else {
				k, _ = c.First()
			}
		}
		for ; k != nil; k, _ = c.Next() {
			key, ok := ParseKey(k)
			if !ok {
				return fmt.Errorf("%w: bad key %x", ErrDamaged, k)
			}
			if key.Stream != stream {
				if key.Stream > stream {
					return nil
				}
				continue
			}
			b := frags.Bucket(k)
			if b == nil {
				return fmt.Errorf("%w: fragment %x is not a bucket", ErrDamaged, k)
			}
			if !fn(unpack(key, b.Sequence())) {
				return nil
			}
		}
		return nil
	})
}

// All calls fn for every fragment of every stream, in key order.
func (v *Volume) All(fn func(Fragment) bool) error {
	return v.view(func(tx *bbolt.Tx) error {
		frags := tx.Bucket(bucketFrags)
		c := frags.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			key, ok := ParseKey(k)
			b := frags.Bucket(k)
			if !ok || b == nil {
				return fmt.Errorf("%w: bad fragment %x", ErrDamaged, k)
			}
			if !fn(unpack(key, b.Sequence())) {
				return nil
			}
		}
		return nil
	})
}

// Read appends the data of the fragment at k to buf.
func (v *Volume) Read(k Key, buf []byte) ([]byte, error) {
	err := v.view(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketFrags).Bucket(k.Bytes())
		if b == nil {
			return fmt.Errorf("%w: stream %d at %d", ErrNotFound, k.Stream, k.Start)
		}
		d := b.Get(keyData)
		if d == nil {
			return fmt.Errorf("%w: fragment %d/%d has no data", ErrDamaged, k.Stream, k.Start)
		}
		buf = append(buf, d...)
		return nil
	})
	return buf, err
}

// Init returns the init segment in force for the fragment at k: the last
// one stored for its stream at or before it.
func (v *Volume) Init(k Key) (start int64, data []byte, err error) {
	err = v.view(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketInits).Cursor()
		var iv []byte
		ik, _ := c.Seek(Key{Stream: k.Stream, Start: k.Start + 1}.Bytes())
		if ik == nil {
			ik, iv = c.Last()
		} else {
			ik, iv = c.Prev()
		}
		key, ok := ParseKey(ik)
		if !ok || key.Stream != k.Stream {
			return fmt.Errorf("%w: no init segment for stream %d at %d", ErrNotFound, k.Stream, k.Start)
		}
		start, data = key.Start, bytes.Clone(iv)
		return nil
	})
	return start, data, err
}

// InitRecord is a stored init segment and the start of the first
// fragment it applies to.
type InitRecord struct {
	Start int64
	Data  []byte
}

// Inits returns stream's init segments in time order.
func (v *Volume) Inits(stream uint32) ([]InitRecord, error) {
	var out []InitRecord
	err := v.view(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketInits).Cursor()
		for k, d := c.Seek(Key{Stream: stream}.Bytes()); k != nil; k, d = c.Next() {
			key, ok := ParseKey(k)
			if !ok || key.Stream != stream {
				break
			}
			out = append(out, InitRecord{Start: key.Start, Data: bytes.Clone(d)})
		}
		return nil
	})
	return out, err
}

// grow makes the file at least need bytes long, ahead of bbolt, in
// bbolt's steps (AllocSize): bbolt grows a file itself when a commit needs
// more room, but reports a failure to as text alone ("file resize error:
// %s"), which loses the card's errno. Grown here, the error is the
// system's own (ENOSPC, EIO), and bbolt finds the room already there.
// The new size needs no fsync of its own (bbolt's growth has one): the
// commit's first fdatasync, which makes its pages durable before its
// meta page is written, makes the size that holds them durable too
// (fdatasync flushes the metadata a read of the data needs; the size on
// ext4, FAT and exFAT alike), and no meta page on the card points past
// a size that is not. One fsync fewer per step: at 2 Mbps a step of
// 4 MiB is every 16 s. On FAT but one: there the commit's fdatasync
// would write the file's directory entry, with its new size, before the
// allocation table that gives it the clusters (see write), and a card
// that kept the one and not the other would be made read-only by the
// kernel at the next read past the old end. An fsync of the directory
// first writes the table alone; a cut after it leaves a cluster chain
// longer than the file, which trimFAT trims when the file is next
// opened for writing. Without fsync (NoSync) bbolt's own growth is left
// as it is.
func (v *Volume) grow(need int64) (grew bool, err error) {
	if v.noSync {
		return false, nil
	}
	fi, err := v.file.Stat()
	if err != nil {
		return false, err
	}
	if need <= fi.Size() {
		return false, nil
	}
	if err := v.file.Truncate(min(need+int64(v.db.AllocSize), v.maxSize)); err != nil {
		return false, err
	}
	if v.fat {
		return true, durable.SyncDir(filepath.Dir(v.path))
	}
	return true, nil
}

// view runs fn in a read transaction, turning bbolt's panics on damaged
// pages into ErrDamaged and faults on pages the card cannot serve into
// I/O errors (see fault.go).
func (v *Volume) view(fn func(tx *bbolt.Tx) error) error {
	v.using.RLock()
	defer v.using.RUnlock()
	if err := v.usable(); err != nil {
		return err
	}
	if err := v.probeMeta(); err != nil {
		return err
	}
	inside := false
	panicked, err := v.guard(func() error {
		return v.db.View(func(tx *bbolt.Tx) error {
			inside = true
			return fn(tx)
		})
	})
	if panicked && !inside {
		// bbolt panicked while it began the transaction, its locks held.
		v.abandon()
	}
	return err
}

// Check runs bbolt's consistency check.
func (v *Volume) Check() error {
	return v.view(func(tx *bbolt.Tx) error {
		// Drain the channel: the check goroutine reads the transaction
		// until it closes it, and must not outlive it.
		var first error
		for err := range tx.Check() {
			if first == nil {
				first = fmt.Errorf("%w: %s: %w", ErrDamaged, v.path, err)
			}
		}
		return first
	})
}

// Close closes the file. It is safe to call twice.
func (v *Volume) Close() error {
	if v == nil {
		return nil
	}
	v.using.Lock()
	defer v.using.Unlock()
	if v.db == nil {
		return nil
	}
	if v.broken.Load() {
		// bbolt may hold its own locks, and its Close would wait for
		// them for ever: remove the mapping, release the file's lock
		// and close the file without it. bbolt's handle, whose
		// pointers lead into the mapping, is dropped first.
		v.db = nil
		unmapFile(v.file, v.base)
		return release(v.file)
	}
	return v.db.Close()
}
