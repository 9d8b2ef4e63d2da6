// Package durable writes files so that a crash or a power cut leaves the
// old content or the new one, never half of either, and makes names
// durable: camd's identity and secrets, the credentials and QR codes its
// tools write, and the directories of its catalog and volumes. Secrets are
// written with their mode from the first byte (0600): no other user can
// open them at any moment, whatever mode an earlier file of the same name
// had.
package durable

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// WriteFile replaces path with data, with mode perm. The data goes to a
// new file in the same directory, created with perm, written and synced;
// it then takes path's place, and the directory is synced so the new name
// survives a power cut. A reader never sees half of it. A crash may leave
// the temporary file behind: Temps matches it.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("durable: %w", err)
	}
	tmp := f.Name()
	err = f.Chmod(perm) // CreateTemp makes it 0600; perm may be wider
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("durable: %w", err)
	}
	return SyncDir(filepath.Dir(path))
}

// Temps is the pattern (filepath.Glob) of the temporary files that
// WriteFile(path) makes.
func Temps(path string) string {
	return filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".*")
}

// SyncDir makes the names created, renamed and removed in dir durable: a
// new file's name survives a power cut only once its directory is synced
// (on ext4, and FAT writes its directory entry only then). A file system
// that cannot sync a directory (EINVAL, ENOTSUP) is taken as having
// nothing to sync.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("durable: sync directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOTSUP) {
		return fmt.Errorf("durable: sync directory %s: %w", dir, err)
	}
	return nil
}
