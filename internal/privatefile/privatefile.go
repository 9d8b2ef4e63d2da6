// Package privatefile writes files that hold secrets (credentials,
// pairing and invitation QR codes): readable by their owner only, from
// the first byte, whatever mode an earlier file of the same name had.
package privatefile

import (
	"fmt"
	"os"
	"path/filepath"
)

// Write replaces path with data, mode 0600. The data goes to a new file
// in the same directory, created 0600, which then takes path's place: no
// other user can open it at any moment, and a reader never sees half of
// it.
func Write(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("privatefile: %w", err)
	}
	tmp := f.Name()
	// CreateTemp makes the file 0600; say so in case a umask or a
	// future Go does otherwise.
	err = f.Chmod(0o600)
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
		return fmt.Errorf("privatefile: %w", err)
	}
	return nil
}
