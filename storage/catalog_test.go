package storage

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
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

// asideFiles lists what OpenReplacing moved aside from path.
func asideFiles(t *testing.T, path string) []string {
	t.Helper()
	m, err := filepath.Glob(AsideGlob(path))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestUnreadableCatalogIsLeftAlone: a catalog that cannot be opened or
// read is not damaged. camd stops with the error and the file stays as
// it is: it is never replaced by an empty catalog (which would forget
// the owner and open pairing to anyone). Root opens any file whatever
// its mode, so as root a directory stands in the catalog's place
// (EISDIR); TestCatalogWithIOErrorsIsLeftAlone reads one from a failing
// card.
func TestUnreadableCatalogIsLeftAlone(t *testing.T) {
	t.Run("a directory in its place", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "catalog.db")
		os.Mkdir(path, 0o700)
		os.WriteFile(filepath.Join(path, "kept"), []byte("x"), 0o600)
		_, err := OpenCatalog(path, CatalogOptions{})
		if err == nil || errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "left as it is") {
			t.Fatalf("open: %v", err)
		}
		if fi, err := os.Stat(path); err != nil || !fi.IsDir() {
			t.Fatalf("the directory was moved: %v", err)
		}
		if m := asideFiles(t, path); len(m) != 0 {
			t.Fatalf("moved aside: %v", m)
		}
	})
	t.Run("no permission", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("root reads a file whatever its mode")
		}
		path := filepath.Join(t.TempDir(), "catalog.db")
		mustCatalog(t, path).Close()
		os.Chmod(path, 0)
		_, err := OpenCatalog(path, CatalogOptions{})
		if !errors.Is(err, os.ErrPermission) || errors.Is(err, ErrDamaged) {
			t.Fatalf("open: %v", err)
		}
		if m := asideFiles(t, path); len(m) != 0 {
			t.Fatalf("moved aside: %v", m)
		}
	})
}
