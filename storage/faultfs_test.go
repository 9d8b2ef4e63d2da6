//go:build linux

package storage

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"go.etcd.io/bbolt"

	"github.com/camd-project/camd/internal/faultfs"
)

// TestFaultFSServer is the FUSE server that faultfs runs in a child
// process.
func TestFaultFSServer(t *testing.T) { faultfs.Serve(t) }

// TestCatalogWithIOErrorsIsLeftAlone: bbolt calls a catalog whose meta
// pages it cannot read "invalid", as it does one that is not bbolt's.
// A card that fails reads is not a damaged catalog: OpenCatalog fails
// with the I/O error, and the file stays, neither moved aside nor
// replaced by an empty one; once the card reads again, the catalog opens
// with its records.
func TestCatalogWithIOErrorsIsLeftAlone(t *testing.T) {
	card := faultfs.MountTemp(t)
	c := mustCatalog(t, filepath.Join(card.Backing, "catalog.db"))
	c.Update(func(tx *bbolt.Tx) error { return tx.Bucket(BucketUsers).Put([]byte("owner"), []byte("kept")) })
	c.Close()
	before, _ := os.ReadFile(filepath.Join(card.Backing, "catalog.db"))

	path := filepath.Join(card.Dir, "catalog.db")
	if err := card.Set(faultfs.Fault{Ops: faultfs.Read, Err: syscall.EIO, Files: "catalog.db"}); err != nil {
		t.Fatal(err)
	}
	_, err := OpenCatalog(path, CatalogOptions{})
	if !errors.Is(err, syscall.EIO) || errors.Is(err, ErrDamaged) {
		t.Fatalf("open on a card that fails reads: %v", err)
	}
	t.Logf("camd stops with: %v", err)
	if m := asideFiles(t, filepath.Join(card.Backing, "catalog.db")); len(m) != 0 {
		t.Fatalf("moved aside: %v", m)
	}
	if after, _ := os.ReadFile(filepath.Join(card.Backing, "catalog.db")); !bytes.Equal(before, after) {
		t.Fatal("the catalog changed")
	}
	if err := card.Heal(); err != nil {
		t.Fatal(err)
	}
	c = mustCatalog(t, path)
	var got []byte
	c.View(func(tx *bbolt.Tx) error { got = bytes.Clone(tx.Bucket(BucketUsers).Get([]byte("owner"))); return nil })
	if string(got) != "kept" || c.Quarantined != "" {
		t.Fatalf("after the card healed: %q, quarantined %q", got, c.Quarantined)
	}
}
