package volume

import (
	"os"

	"golang.org/x/sys/unix"
)

// onFAT reports whether f is on FAT (vfat, msdos) or exFAT: see write
// for why the order of its fsyncs matters there.
func onFAT(f *os.File) bool {
	var st unix.Statfs_t
	if unix.Fstatfs(int(f.Fd()), &st) != nil {
		return false
	}
	return st.Type == unix.MSDOS_SUPER_MAGIC || st.Type == unix.EXFAT_SUPER_MAGIC
}

// trimFAT frees the clusters of a file on FAT past its size: what a power
// cut leaves when the allocation table of a growth reached the card and
// the directory entry with the new size did not (see grow). The kernel
// counts a file's clusters from its size when it reads the entry, and
// finding more at the end of the chain when the file grows again, it
// makes the card read-only. Truncating to the same size trims the
// chain. Elsewhere, and on FAT when there is nothing to trim, it does
// nothing.
func trimFAT(f *os.File) error {
	if !onFAT(f) {
		return nil
	}
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	return f.Truncate(fi.Size())
}
