package storage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
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
// file that bbolt cannot open, or that fails its consistency check, is
// moved aside (its path is in Quarantined) and a new catalog replaces it:
// the device keeps working, and the owner is told through an event.
func OpenCatalog(path string, opts CatalogOptions) (*Catalog, error) {
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = 2 * time.Second
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	db, moved, err := OpenReplacing(path, func(path string) (*bbolt.DB, error) { return open(path, opts) },
		func(err error) bool { return errors.Is(err, ErrLocked) || errors.Is(err, ErrNewerSchema) })
	if err != nil {
		return nil, err
	}
	return &Catalog{db: db, path: path, Quarantined: moved}, nil
}

// OpenReplacing opens the file at path with open. When that fails, with
// an error other than those spare accepts (a lock another process holds,
// a file of a newer camd), the file is moved aside, to
// path.damaged-TIME, and open makes a new one at path: the device keeps
// working, and the caller tells the owner. It returns where the damaged
// file went, or "".
func OpenReplacing[T any](path string, open func(path string) (T, error), spare func(error) bool) (T, string, error) {
	db, err := open(path)
	if err == nil || spare(err) {
		return db, "", err
	}
	moved := fmt.Sprintf("%s.damaged-%s", path, time.Now().UTC().Format("20060102T150405Z"))
	if rerr := os.Rename(path, moved); rerr != nil {
		return db, "", fmt.Errorf("storage: %s is damaged (%w) and cannot be moved aside: %w", path, err, rerr)
	}
	db, err = open(path)
	return db, moved, err
}

func open(path string, opts CatalogOptions) (*bbolt.DB, error) {
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: opts.LockTimeout, FreelistType: bbolt.FreelistMapType})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s", ErrLocked, path)
	}
	if err != nil {
		return nil, fmt.Errorf("storage: open catalog: %w", err)
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
		err = check(db)
	}
	if err != nil {
		db.Close()
		if errors.Is(err, ErrNewerSchema) {
			return nil, err
		}
		return nil, fmt.Errorf("storage: catalog: %w", err)
	}
	return db, nil
}

// check runs bbolt's consistency check.
func check(db *bbolt.DB) error {
	return db.View(func(tx *bbolt.Tx) error {
		// Drain the channel: the check goroutine reads the transaction
		// until it closes it, and must not outlive it.
		var first error
		for err := range tx.Check() {
			if first == nil {
				first = fmt.Errorf("consistency check: %w", err)
			}
		}
		return first
	})
}

// Update runs fn in a read-write transaction, committed (and fsynced)
// when fn returns nil.
func (c *Catalog) Update(fn func(tx *bbolt.Tx) error) error { return c.db.Update(fn) }

// View runs fn in a read-only transaction.
func (c *Catalog) View(fn func(tx *bbolt.Tx) error) error { return c.db.View(fn) }

// Check runs bbolt's consistency check on the open catalog.
func (c *Catalog) Check() error { return check(c.db) }

// Path is the catalog's file.
func (c *Catalog) Path() string { return c.path }

// Close closes the file. It is safe to call twice.
func (c *Catalog) Close() error {
	if c == nil || c.db == nil {
		return nil
	}
	return c.db.Close()
}
