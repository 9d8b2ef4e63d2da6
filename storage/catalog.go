package storage

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/camd-project/camd/internal/durable"
)

// Buckets of the catalog. Each belongs to the package named beside it.
var (
	BucketMeta       = []byte("meta")       // storage: schema version
	BucketUsers      = []byte("users")      // pairing: users and credentials
	BucketPairing    = []byte("pairing")    // pairing: secrets, counters, windows
	BucketSettings   = []byte("settings")   // settings
	BucketEvents     = []byte("events")     // events
	BucketRecordings = []byte("recordings") // recording index
)

var allBuckets = [][]byte{BucketMeta, BucketUsers, BucketPairing, BucketSettings, BucketEvents, BucketRecordings}

// SchemaVersion is the catalog layout this build writes.
const SchemaVersion = 1

// Errors of the catalog.
var (
	ErrLocked      = errors.New("storage: catalog is in use by another process")
	ErrNewerSchema = errors.New("storage: catalog was written by a newer camd")
	// ErrDamaged marks the errors that say a bbolt file is damaged: not
	// a bbolt file at all, a meta page whose checksum fails, a format
	// version bbolt cannot read (errors.ErrInvalid, ErrChecksum,
	// ErrVersionMismatch), or a failed consistency check. Only these make
	// OpenReplacing move a file aside: an error opening, locking or
	// reading it does not.
	ErrDamaged = errors.New("storage: file damaged")
)

// CatalogOptions tune OpenCatalog. The zero value means defaults.
type CatalogOptions struct {
	// LockTimeout is how long to wait for another process's lock
	// (default 2 s).
	LockTimeout time.Duration
}

// Catalog is the catalog file.
type Catalog struct {
	db   *bbolt.DB
	path string
	// Quarantined is the path a damaged catalog was moved to when this one
	// was opened, or "".
	Quarantined string
}

// OpenCatalog opens the catalog at path, creating it and its buckets. A
// file that bbolt says is damaged is moved aside (its path is in
// Quarantined) and a new catalog replaces it: the device keeps working,
// and the owner is told through an event. A file that cannot be read
// (permissions, I/O errors), is locked by another process or was written
// by a newer camd is left as it is, and OpenCatalog fails.
func OpenCatalog(path string, opts CatalogOptions) (*Catalog, error) {
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = 2 * time.Second
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	db, moved, err := OpenReplacing(path, func(path string) (*bbolt.DB, error) { return open(path, opts) })
	if err != nil {
		return nil, err
	}
	return &Catalog{db: db, path: path, Quarantined: moved}, nil
}

// damagedError is bbolt's word that a file is damaged; it is ErrDamaged.
type damagedError struct {
	path string
	err  error
}

func (e *damagedError) Error() string        { return "storage: " + e.path + " is damaged: " + e.err.Error() }
func (e *damagedError) Unwrap() error        { return e.err }
func (e *damagedError) Is(target error) bool { return target == ErrDamaged }

// OpenReplacing opens the file at path with open. When that fails with
// ErrDamaged, the file is moved aside, to path.damaged-TIME (AsideGlob),
// and open makes a new one at path: the device keeps working, and the
// caller tells the owner. Any other error (permissions, I/O, a lock
// another process holds, a file of a newer camd) leaves the file as it
// is and is returned. It returns where the damaged file went, or "".
//
// The directory is synced once the file is open: a file open made (the
// first start, or after a move aside) keeps its name through a power cut.
func OpenReplacing[T any](path string, open func(path string) (T, error)) (T, string, error) {
	db, err := open(path)
	if err == nil {
		return db, "", syncDir(path, err)
	}
	if !errors.Is(err, ErrDamaged) {
		return db, "", err
	}
	moved := fmt.Sprintf("%s.damaged-%s", path, time.Now().UTC().Format("20060102T150405Z"))
	if rerr := os.Rename(path, moved); rerr != nil {
		return db, "", fmt.Errorf("storage: %s is damaged (%w) and cannot be moved aside: %w", path, err, rerr)
	}
	db, err = open(path)
	return db, moved, syncDir(path, err)
}

// syncDir syncs path's directory when the open went well (err is nil)
// and returns err. A directory that cannot be synced is no reason to
// stop: the file is open and works.
func syncDir(path string, err error) error {
	if err != nil {
		return err
	}
	durable.SyncDir(filepath.Dir(path))
	return nil
}

// AsideGlob is the pattern (filepath.Glob) of the files OpenReplacing
// moved aside from path.
func AsideGlob(path string) string { return path + ".damaged-*" }

// OpenBolt opens the bbolt file at path (mode 0600) and tells damage
// from trouble reading it: the errors that say the file is damaged are
// ErrDamaged; the others (permissions, I/O, a lock another process
// holds: errors.ErrTimeout) say the file was left as it is. bbolt calls
// a file invalid when it cannot read its meta pages, as it does one that
// is not bbolt's: OpenBolt reads them again itself, and a file the card
// cannot read is unreadable, not damaged.
func OpenBolt(path string, opts *bbolt.Options) (*bbolt.DB, error) {
	db, err := bbolt.Open(path, 0o600, opts)
	if err == nil {
		return db, nil
	}
	if errors.Is(err, berrors.ErrInvalid) || errors.Is(err, berrors.ErrChecksum) || errors.Is(err, berrors.ErrVersionMismatch) {
		if rerr := readMeta(path); rerr != nil {
			err = rerr
		} else {
			return nil, &damagedError{path, err}
		}
	}
	return nil, fmt.Errorf("storage: %s cannot be opened, and is left as it is: %w", path, err)
}

// readMeta reads the part of a file where bbolt keeps its meta pages (the
// first two pages of up to 16 KiB), as bbolt does when it opens one. A
// file shorter than that reads without error: it is cut short, not
// unreadable.
func readMeta(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, 32<<10)
	if _, err := f.ReadAt(buf, 0); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// Check runs bbolt's consistency check on db; a failure is ErrDamaged.
func Check(db *bbolt.DB) error {
	return db.View(func(tx *bbolt.Tx) error {
		// Drain the channel: the check goroutine reads the transaction
		// until it closes it, and must not outlive it.
		var first error
		for err := range tx.Check() {
			if first == nil {
				first = &damagedError{db.Path(), fmt.Errorf("consistency check: %w", err)}
			}
		}
		return first
	})
}

func open(path string, opts CatalogOptions) (*bbolt.DB, error) {
	db, err := OpenBolt(path, &bbolt.Options{Timeout: opts.LockTimeout, FreelistType: bbolt.FreelistMapType})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s", ErrLocked, path)
	}
	if err != nil {
		return nil, err
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, b := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		meta := tx.Bucket(BucketMeta)
		if v := meta.Get([]byte("schema")); len(v) == 1 && int(v[0]) > SchemaVersion {
			return fmt.Errorf("%w (schema %d, this camd reads %d)", ErrNewerSchema, v[0], SchemaVersion)
		}
		return meta.Put([]byte("schema"), []byte{SchemaVersion})
	})
	if err == nil {
		err = Check(db)
	}
	if err != nil {
		db.Close()
		if errors.Is(err, ErrNewerSchema) || errors.Is(err, ErrDamaged) {
			return nil, err
		}
		return nil, fmt.Errorf("storage: catalog: %w", err)
	}
	return db, nil
}

// Update runs fn in a read-write transaction, committed (and fsynced)
// when fn returns nil.
func (c *Catalog) Update(fn func(tx *bbolt.Tx) error) error { return c.db.Update(fn) }

// View runs fn in a read-only transaction.
func (c *Catalog) View(fn func(tx *bbolt.Tx) error) error { return c.db.View(fn) }

// Check runs bbolt's consistency check on the open catalog.
func (c *Catalog) Check() error { return Check(c.db) }

// Path is the catalog's file.
func (c *Catalog) Path() string { return c.path }

// Close closes the file. It is safe to call twice.
func (c *Catalog) Close() error {
	if c == nil || c.db == nil {
		return nil
	}
	return c.db.Close()
}
