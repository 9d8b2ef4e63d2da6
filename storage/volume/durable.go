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
	"time"

	"go.etcd.io/bbolt"

	"github.com/camd-project/camd/internal/durable"
)

// A volume file is made in a way that a power cut at any point leaves
// either nothing the caller listed, or a whole empty volume: Create and
// Reuse write the complete first pages of a new volume (its image, made
// by bbolt in memory) in one write, fsync the file, and fsync the
// directory, so that the file's name is on the card too (not when the
// caller says it is there already, Options.Named, and the file does not
// grow). Only then does the caller list the volume. Which file is being
// made is the caller's to remember before it starts (package recordings
// writes it in the catalog), because nothing in a half-written file can
// be trusted: FAT gives a file clusters that still hold what a deleted
// file left there.

// image returns the first pages of a new, empty volume: what bbolt
// writes when it makes the file and the transaction that adds camd's
// buckets, made in a scratch file in memory.
func image(id uint64, created time.Time) ([]byte, error) {
	f, err := scratchFile()
	if err != nil {
		return nil, fmt.Errorf("volume: scratch file: %w", err)
	}
	defer f.Close()
	db, err := bbolt.Open(f.Name(), 0o600, &bbolt.Options{
		NoFreelistSync: false,
		FreelistType:   bbolt.FreelistMapType,
		NoSync:         true,
		NoGrowSync:     true,
		OpenFile:       func(string, int, os.FileMode) (*os.File, error) { return f, nil },
	})
	if err != nil {
		return nil, fmt.Errorf("volume: image: %w", err)
	}
	defer db.Close()
	err = db.Update(func(tx *bbolt.Tx) error {
		m, err := tx.CreateBucket(bucketMeta)
		if err != nil {
			return err
		}
		idb := binary.BigEndian.AppendUint64(nil, id)
		cb := binary.BigEndian.AppendUint64(nil, uint64(created.UnixNano()))
		for _, kv := range [][2][]byte{{[]byte("magic"), magic}, {[]byte("format"), {Format}}, {[]byte("id"), idb}, {[]byte("created"), cb}} {
			if err := m.Put(kv[0], kv[1]); err != nil {
				return err
			}
		}
		if _, err := tx.CreateBucket(bucketInits); err != nil {
			return err
		}
		_, err = tx.CreateBucket(bucketFrags)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("volume: image: %w", err)
	}
	var img []byte
	err = db.View(func(tx *bbolt.Tx) error {
		img = make([]byte, tx.Size())
		_, err := f.ReadAt(img, 0)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("volume: image: %w", err)
	}
	return img, nil
}

// Create makes a new volume file at path, which must not exist. When it
// returns, the volume and its name are on stable storage (unless
// NoSync). A failure removes what it made.
func Create(path string, id uint64, opts Options) (*Volume, error) {
	opts = opts.withDefaults()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("volume: create: %w", err)
	}
	v, err := write(f, path, id, opts)
	if err != nil {
		os.Remove(path)
		durable.SyncDir(filepath.Dir(path))
		return nil, fmt.Errorf("volume: create %s: %w", path, err)
	}
	return v, nil
}

// Reuse makes the existing file at path a new, empty volume in place:
// its first pages are written again and it keeps its size, so that the
// file system allocates nothing and neither the file allocation table
// nor the directory changes (see docs/storage.md, "The ring of volume
// files"). Whatever the file held is lost, whatever state a power cut
// left it in: Reuse also completes a Create or a Reuse that was cut
// short (then without opts.Named: the file's name may not be durable).
// A file that another process has open as a volume is ErrLocked; a
// missing one fs.ErrNotExist.
func Reuse(path string, id uint64, opts Options) (*Volume, error) {
	opts = opts.withDefaults()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("volume: reuse: %w", err)
	}
	if err := tryLock(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("%w: %s", ErrLocked, path)
	}
	v, err := write(f, path, id, opts)
	if err != nil {
		return nil, fmt.Errorf("volume: reuse %s: %w", path, err)
	}
	return v, nil
}

// write writes a new volume's image at the start of f, grows the file to
// the first step of its growth, fsyncs it and its directory (not the
// directory when opts.Named and the file did not grow), closes it and
// opens the volume.
func write(f *os.File, path string, id uint64, opts Options) (*Volume, error) {
	created := time.Now()
	err := func() error {
		defer f.Close()
		if err := trimFAT(f); err != nil {
			return err
		}
		img, err := image(id, created)
		if err != nil {
			return err
		}
		if _, err := f.WriteAt(img, 0); err != nil {
			return err
		}
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		// The first step of growth (see grow), in the same fsync.
		grows := false
		if want := int64(len(img)) + overhead + allocSize(opts); fi.Size() < want {
			if err := f.Truncate(min(want, opts.MaxSize)); err != nil {
				return err
			}
			grows = true
		}
		if opts.NoSync {
			return nil
		}
		if opts.Named && !grows {
			// A file reused in place whose name is durable: neither
			// its directory entry's place nor its clusters change, and
			// the file's fsync writes its pages and its entry (size,
			// times). The directory has nothing to flush.
			return f.Sync()
		}
		if onFAT(f) {
			// Linux's vfat writes a file's directory entry (its first
			// cluster, its size) before the allocation table in one
			// fsync of the file (exfat, before its allocation bitmap): a card that keeps only some of
			// those writes holds an entry pointing at clusters the
			// table calls free, and the kernel makes the card
			// read-only the moment anything reads past its first
			// cluster, grows or deletes the file. An fsync of the
			// directory writes the table, and the entry only as it
			// was made (empty, no cluster): after it, the file's fsync
			// writes the entry alone. A cut between the two leaves
			// clusters allocated to no file (fsck reclaims them) and
			// the file empty, which the next start makes again.
			if err := durable.SyncDir(filepath.Dir(path)); err != nil {
				return err
			}
			return f.Sync()
		}
		if err := f.Sync(); err != nil {
			return err
		}
		return durable.SyncDir(filepath.Dir(path))
	}()
	if err != nil {
		return nil, err
	}
	// The image went out in one write, which may have made a large
	// folio of it: drop it, so that the meta page is rewritten alone
	// (see randomAccess).
	evict(path)
	v, err := openVolume(path, opts, false)
	if err != nil {
		return nil, err
	}
	v.id, v.created = id, created
	return v, nil
}

// allocSize is the step a volume file grows by.
func allocSize(o Options) int64 { return min(4<<20, o.MaxSize/8) }

// Remove deletes volume files and fsyncs the directories that held them,
// so that the deletions are on stable storage when it returns. A file
// already gone is no error.
func Remove(paths ...string) error {
	var first error
	dirs := map[string]bool{}
	for _, p := range paths {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			first = cmpErr(first, fmt.Errorf("volume: remove: %w", err))
			continue
		}
		dirs[filepath.Dir(p)] = true
	}
	for d := range dirs {
		first = cmpErr(first, durable.SyncDir(d))
	}
	return first
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// Unfinished reports whether the file at path holds nothing anyone
// wrote: it is empty, its first two pages are zeros, or it is a bbolt
// file without a single bucket. That is what a volume file whose
// creation a power cut interrupted looks like when the file's name
// reached the card and its first pages did not (or, from a camd before
// this one, only bbolt's own first pages did).
func Unfinished(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, 8192)
	n, err := f.ReadAt(head, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return false // unreadable: unknown
	}
	if len(bytes.Trim(head[:n], "\x00")) == 0 {
		return true
	}
	if precheck(path, false) != nil {
		return false
	}
	db, err := bbolt.Open(path, 0o400, &bbolt.Options{ReadOnly: true, Timeout: 100 * time.Millisecond})
	if err != nil {
		return false
	}
	defer db.Close()
	empty := false
	guard(func() error {
		return db.View(func(tx *bbolt.Tx) error {
			k, _ := tx.Cursor().First()
			empty = k == nil
			return nil
		})
	}, func(any) error { return nil })
	return empty
}
