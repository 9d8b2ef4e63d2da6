package volume

import (
	"os"

	"golang.org/x/sys/unix"
)

// unlock releases bbolt's lock of f. Closing f alone would not while the
// file is still mapped: the mapping holds the open file, and its lock.
func unlock(f *os.File) error { return unix.Flock(int(f.Fd()), unix.LOCK_UN) }

// tryLock takes the lock bbolt's writer takes, or fails at once if a
// reader or a writer holds the file.
func tryLock(f *os.File) error { return unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) }

// scratchFile is a file in memory.
func scratchFile() (*os.File, error) {
	fd, err := unix.MemfdCreate("camd-volume", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), "camd-volume"), nil
}
