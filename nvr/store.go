package nvr

import (
	"encoding/binary"
	"encoding/json"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/camd-project/camd/storage"
)

// The catalog's "nvr" bucket: a nested bucket "cameras" (camera ID →
// record, JSON) and "next_stream" (uint32 BE), the stream number the next
// camera gets. Stream numbers are never reused, so the recordings a
// removed camera left keep their own stream.
var (
	bucketRoot    = []byte("nvr")
	bucketCameras = []byte("cameras")
	keyNextStream = []byte("next_stream")
)

// firstStream is the stream of the first camera added: stream 1 is a
// camera's own video (device).
const firstStream = 2

// record is a camera as the catalog keeps it: what it is, and its secret.
type record struct {
	Camera Camera `json:"camera"`
	Secret secret `json:"secret"`
}

// catalog keeps the records in the catalog file.
type catalog struct{ db *storage.Catalog }

func (c catalog) init() error {
	return c.db.Update(func(tx *bbolt.Tx) error {
		root, err := tx.CreateBucketIfNotExists(bucketRoot)
		if err != nil {
			return err
		}
		_, err = root.CreateBucketIfNotExists(bucketCameras)
		return err
	})
}

func (c catalog) load() ([]record, error) {
	var out []record
	err := c.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketRoot).Bucket(bucketCameras).ForEach(func(k, v []byte) error {
			var r record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("nvr: camera %q: %w", k, err)
			}
			out = append(out, r)
			return nil
		})
	})
	return out, err
}

// add stores r with the next stream number, which it returns.
func (c catalog) add(r *record) error {
	return c.db.Update(func(tx *bbolt.Tx) error {
		root := tx.Bucket(bucketRoot)
		next := uint32(firstStream)
		if v := root.Get(keyNextStream); len(v) == 4 {
			next = binary.BigEndian.Uint32(v)
		}
		r.Camera.Stream = next
		if err := root.Put(keyNextStream, binary.BigEndian.AppendUint32(nil, next+1)); err != nil {
			return err
		}
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		return root.Bucket(bucketCameras).Put([]byte(r.Camera.ID), b)
	})
}

// put replaces a record.
func (c catalog) put(r record) error {
	return c.db.Update(func(tx *bbolt.Tx) error {
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		return tx.Bucket(bucketRoot).Bucket(bucketCameras).Put([]byte(r.Camera.ID), b)
	})
}

// remove deletes the record and with it the secret.
func (c catalog) remove(id string) error {
	return c.db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketRoot).Bucket(bucketCameras).Delete([]byte(id))
	})
}
