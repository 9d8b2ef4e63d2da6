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

	"github.com/camd-project/camd/storage"
)

// Errors of the snapshot store.
var (
	ErrNotFound = errors.New("snapshots: no such snapshot")
	ErrTooLarge = errors.New("snapshots: picture too large")
	ErrShare    = errors.New("snapshots: no such share")
)

var (
	bucketMeta = []byte("meta")
	bucketJPEG = []byte("jpeg")
)

// Shares of the store: a snapshot counts against the share of who took
// it, and a save forgets only older snapshots of its own share.
const (
	// Motion: taken by camd at the start of a motion span (half the
	// store).
	Motion = "motion"
	// Owner: saved by an owner (a quarter).
	Owner = "owner"
	// Viewer: saved by a viewer (a quarter).
	Viewer = "viewer"
)

// quarters is how many quarters of Options.MaxBytes a share may hold (0:
// no such share).
func quarters(share string) int64 {
	switch share {
	case Motion:
		return 2
	case Owner, Viewer:
		return 1
	}
	return 0
}

// Snapshot describes a saved picture.
type Snapshot struct {
	ID    string    `json:"id"`
	Time  time.Time `json:"time"`
	Size  int       `json:"size"`
	Cause string    `json:"cause,omitempty"`
	// By is the ID of the user who saved it ("" for motion).
	By string `json:"by,omitempty"`
	// Share is what it counts against: Motion, Owner or Viewer.
	Share string `json:"share"`
}

// share is the snapshot's share; one saved before shares existed counts
// as motion or, saved by a user, as the owner's (it cannot be pushed out
// by viewers). List and Get fill Share in with it.
func (s Snapshot) share() string {
	switch {
	case s.Share != "":
		return s.Share
	case s.Cause == Motion:
		return Motion
	}
	return Owner
}

// Options tune Open. The zero value means defaults.
type Options struct {
	// MaxBytes bounds the pictures kept (default 32 MiB): half of it for
	// motion, a quarter for owners, a quarter for viewers.
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

// Open opens or creates the store at path. A file that bbolt says is
// damaged is moved aside (Quarantined) and a new one started; one that
// cannot be read, or that another process holds, is left alone and Open
// fails.
func Open(path string, opts Options) (*Store, error) {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = 32 << 20
	}
	s := &Store{opts: opts}
	db, moved, err := storage.OpenReplacing(path, s.open)
	if err != nil {
		return nil, err
	}
	s.db, s.Quarantined = db, moved
	return s, nil
}

func (s *Store) open(path string) (*bbolt.DB, error) {
	db, err := storage.OpenBolt(path, &bbolt.Options{Timeout: 2 * time.Second, NoSync: s.opts.NoSync, FreelistType: bbolt.FreelistMapType})
	if err != nil {
		return nil, fmt.Errorf("snapshots: %w", err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, b := range [][]byte{bucketMeta, bucketJPEG} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		err = storage.Check(db)
	}
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

// bound is the bytes a share may hold.
func (s *Store) bound(share string) int64 { return s.opts.MaxBytes * quarters(share) / 4 }

// Save stores a picture; snap says when it was taken (Time), why (Cause),
// by whom (By) and which share it counts against (Share). It returns
// the saved snapshot's description, with its ID. The oldest snapshots of
// the same share are forgotten to stay within its bound.
func (s *Store) Save(jpeg []byte, snap Snapshot) (Snapshot, error) {
	if quarters(snap.Share) == 0 {
		return Snapshot{}, fmt.Errorf("%w: %q", ErrShare, snap.Share)
	}
	if int64(len(jpeg)) > s.bound(snap.Share)/2 {
		return Snapshot{}, fmt.Errorf("%w: %d bytes", ErrTooLarge, len(jpeg))
	}
	snap.Size = len(jpeg)
	err := s.db.Update(func(tx *bbolt.Tx) error {
		meta, pics := tx.Bucket(bucketMeta), tx.Bucket(bucketJPEG)
		n := uint64(max(snap.Time.UnixNano(), 0))
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
		// Forget the oldest of the same share beyond its bound.
		total, bound := int64(0), s.bound(snap.Share)
		c := meta.Cursor()
		for ck, cv := c.Last(); ck != nil; ck, cv = c.Prev() {
			var m Snapshot
			json.Unmarshal(cv, &m)
			if m.share() != snap.Share {
				continue
			}
			total += int64(m.Size)
			if total > bound {
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

// Have reports which of ids are saved.
func (s *Store) Have(ids ...string) (map[string]bool, error) {
	have := map[string]bool{}
	err := s.db.View(func(tx *bbolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		for _, id := range ids {
			if k, ok := idKey(id); ok && meta.Get(k) != nil {
				have[id] = true
			}
		}
		return nil
	})
	return have, err
}

// List returns the saved snapshots, newest first.
func (s *Store) List() ([]Snapshot, error) {
	out := []Snapshot{}
	err := s.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketMeta).Cursor()
		for k, v := c.Last(); k != nil; k, v = c.Prev() {
			var m Snapshot
			if json.Unmarshal(v, &m) == nil {
				m.Share = m.share()
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
		m.Share = m.share()
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
