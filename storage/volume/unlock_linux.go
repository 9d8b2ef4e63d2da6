package volume

import (
	"os"

	"golang.org/x/sys/unix"
)

// unlock releases bbolt's lock of f. Closing f alone would not while the
// file is still mapped: the mapping holds the open file, and its lock.
func unlock(f *os.File) error { return unix.Flock(int(f.Fd()), unix.LOCK_UN) }
