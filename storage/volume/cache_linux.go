package volume

import (
	"os"

	"golang.org/x/sys/unix"
)

// randomAccess turns readahead off for f. bbolt reads a page at a time;
// readahead would also put large folios in the page cache, and on kernels
// with large folios, rewriting one 4 KiB page of a large folio (the meta
// page, at every commit) writes, and is accounted as writing, the whole
// folio.
func randomAccess(f *os.File) { unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_RANDOM) }

// dropCache drops the file's clean, unmapped pages from the page cache
// (see randomAccess).
func dropCache(f *os.File) { unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED) }
