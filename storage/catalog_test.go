package storage

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// mustCatalog opens a catalog and checks its consistency when the test
// ends.
func mustCatalog(t *testing.T, path string) *Catalog {
	t.Helper()
	c, err := OpenCatalog(path, CatalogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Check(); err != nil && !errors.Is(err, berrors.ErrDatabaseNotOpen) {
			t.Errorf("catalog inconsistent: %v", err)
		}
		c.Close()
	})
	return c
}

func TestCatalogCreatesBucketsAndKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "catalog.db")
	c := mustCatalog(t, path)
	err := c.Update(func(tx *bbolt.Tx) error {
		for _, b := range allBuckets {
			if tx.Bucket(b) == nil {
				t.Errorf("bucket %s missing", b)
			}
		}
		return tx.Bucket(BucketSettings).Put([]byte("name"), []byte("porch"))
	})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	c.Close()
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("catalog file: %v %v", err, fi.Mode())
	}
	d := mustCatalog(t, path)
	var got []byte
	d.View(func(tx *bbolt.Tx) error {
		got = append(got, tx.Bucket(BucketSettings).Get([]byte("name"))...)
		return nil
	})
	if string(got) != "porch" {
		t.Fatalf("after reopen: %q", got)
	}
	if d.Quarantined != "" {
		t.Fatal("a healthy catalog was quarantined")
	}
}

func TestDamagedCatalogIsQuarantinedNotFatal(t *testing.T) {
	cases := map[string][]byte{
		"garbage":   []byte("this is not a bbolt file at all, just text that someone wrote here"),
		"empty":     {},
		"truncated": nil, // filled below: the first 2 KiB of a real catalog
	}
	for name, content := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "catalog.db")
			if content == nil {
				c, err := OpenCatalog(path, CatalogOptions{})
				if err != nil {
					t.Fatal(err)
				}
				c.Close()
				b, _ := os.ReadFile(path)
				content = b[:2048]
			}
			os.WriteFile(path, content, 0o600)
			c := mustCatalog(t, path)
			if name != "empty" && c.Quarantined == "" {
				t.Fatal("damaged catalog not quarantined")
			}
			if c.Quarantined != "" {
				if b, err := os.ReadFile(c.Quarantined); err != nil || string(b) != string(content) {
					t.Fatalf("quarantined copy: %v", err)
				}
			}
			if err := c.Update(func(tx *bbolt.Tx) error { return tx.Bucket(BucketUsers).Put([]byte("k"), []byte("v")) }); err != nil {
				t.Fatalf("new catalog unusable: %v", err)
			}
		})
	}
}

func TestCatalogLockedByAnotherOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "catalog.db")
	mustCatalog(t, path)
	_, err := OpenCatalog(path, CatalogOptions{LockTimeout: 100_000_000})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: %v", err)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "catalog.db")
	c := mustCatalog(t, path)
	c.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(BucketMeta).Put([]byte("schema"), []byte{SchemaVersion + 1})
	})
	c.Close()
	if _, err := OpenCatalog(path, CatalogOptions{}); !errors.Is(err, ErrNewerSchema) {
		t.Fatalf("newer schema: %v", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatal("a newer catalog must be left alone, not quarantined")
	}
}
