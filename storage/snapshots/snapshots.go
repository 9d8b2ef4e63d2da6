package snapshots

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/camd-project/camd/storage"
)

// Errors of the snapshot store.
var (
	ErrNotFound = errors.New("snapshots: no such snapshot")
	ErrTooLarge = errors.New("snapshots: picture too large")
)

var (
	bucketMeta = []byte("meta")
	bucketJPEG = []byte("jpeg")
)

// Snapshot describes a saved picture.
type Snapshot struct {
	ID    string    `json:"id"`
	Time  time.Time `json:"time"`
	Size  int       `json:"size"`
	Cause string    `json:"cause,omitempty"`
}

// Options tune Open. The zero value means defaults.
type Options struct {
	// MaxBytes bounds the pictures kept (default 32 MiB).
	MaxBytes int64
	// NoSync skips fsync (tests only).
	NoSync bool
}

// Store is the snapshot file.
type Store struct {
	db   *bbolt.DB
	opts Options
	// Quarantined is where a damaged file was moved at Open, or "".
	Quarantined string
}

// Open opens or creates the store at path.
func Open(path string, opts Options) (*Store, error) {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = 32 << 20
	}
	s := &Store{opts: opts}
	// A file another process holds is not damaged: it is left alone.
	db, moved, err := storage.OpenReplacing(path, s.open, func(err error) bool { return errors.Is(err, berrors.ErrTimeout) })
	if err != nil {
		return nil, err
	}
	s.db, s.Quarantined = db, moved
	return s, nil
}

func (s *Store) open(path string) (*bbolt.DB, error) {
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: 2 * time.Second, NoSync: s.opts.NoSync, FreelistType: bbolt.FreelistMapType})
	if err != nil {
		return nil, fmt.Errorf("snapshots: %w", err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, b := range [][]byte{bucketMeta, bucketJPEG} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		var first error
		for err := range tx.Check() { // drained: the check must not outlive tx
			if first == nil {
				first = err
			}
		}
		return first
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("snapshots: %w", err)
	}
	return db, nil
}

func idKey(id string) ([]byte, bool) {
	k, err := hex.DecodeString(id)
	return k, err == nil && len(k) == 8
}

// Save stores a picture taken at at and returns its description.
func (s *Store) Save(jpeg []byte, at time.Time, cause string) (Snapshot, error) {
	if int64(len(jpeg)) > s.opts.MaxBytes/2 {
		return Snapshot{}, fmt.Errorf("%w: %d bytes", ErrTooLarge, len(jpeg))
	}
	snap := Snapshot{Time: at, Size: len(jpeg), Cause: cause}
	err := s.db.Update(func(tx *bbolt.Tx) error {
		meta, pics := tx.Bucket(bucketMeta), tx.Bucket(bucketJPEG)
		n := uint64(max(at.UnixNano(), 0))
		k := binary.BigEndian.AppendUint64(nil, n)
		for meta.Get(k) != nil {
			n++
			k = binary.BigEndian.AppendUint64(k[:0], n)
		}
		snap.ID = hex.EncodeToString(k)
		v, _ := json.Marshal(snap)
		if err := meta.Put(k, v); err != nil {
			return err
		}
		if err := pics.Put(k, jpeg); err != nil {
			return err
		}
		// Forget the oldest beyond the bound.
		total := int64(0)
		c := meta.Cursor()
		for ck, cv := c.Last(); ck != nil; ck, cv = c.Prev() {
			var m Snapshot
			json.Unmarshal(cv, &m)
			total += int64(m.Size)
			if total > s.opts.MaxBytes {
				old := bytes.Clone(ck)
				if err := pics.Delete(old); err != nil {
					return err
				}
				if err := c.Delete(); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return snap, err
}

// List returns the saved snapshots, newest first.
func (s *Store) List() ([]Snapshot, error) {
	out := []Snapshot{}
	err := s.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketMeta).Cursor()
		for k, v := c.Last(); k != nil; k, v = c.Prev() {
			var m Snapshot
			if json.Unmarshal(v, &m) == nil {
				out = append(out, m)
			}
		}
		return nil
	})
	return out, err
}

// Get returns a saved picture.
func (s *Store) Get(id string) ([]byte, Snapshot, error) {
	k, ok := idKey(id)
	if !ok {
		return nil, Snapshot{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	var b []byte
	var m Snapshot
	err := s.db.View(func(tx *bbolt.Tx) error {
		v := tx.Bucket(bucketMeta).Get(k)
		if v == nil {
			return fmt.Errorf("%w: %s", ErrNotFound, id)
		}
		json.Unmarshal(v, &m)
		b = bytes.Clone(tx.Bucket(bucketJPEG).Get(k))
		return nil
	})
	return b, m, err
}

// Delete forgets a saved picture.
func (s *Store) Delete(id string) error {
	k, ok := idKey(id)
	if !ok {
		return fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	return s.db.Update(func(tx *bbolt.Tx) error {
		if tx.Bucket(bucketMeta).Get(k) == nil {
			return fmt.Errorf("%w: %s", ErrNotFound, id)
		}
		if err := tx.Bucket(bucketMeta).Delete(k); err != nil {
			return err
		}
		return tx.Bucket(bucketJPEG).Delete(k)
	})
}

// Close closes the file. It is safe to call twice.
func (s *Store) Close() error {
	if s == nil || s.db == nil {
		return nil
	}
	return s.db.Close()
}
