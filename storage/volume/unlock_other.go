//go:build !linux

package volume

import "os"

// unlock does nothing here: the lock of an abandoned handle stays until
// the process exits.
func unlock(*os.File) error { return nil }

// tryLock does nothing here.
func tryLock(*os.File) error { return nil }

// scratchFile is a temporary file, removed at once.
func scratchFile() (*os.File, error) {
	f, err := os.CreateTemp("", "camd-volume-")
	if err == nil {
		os.Remove(f.Name())
	}
	return f, err
}
