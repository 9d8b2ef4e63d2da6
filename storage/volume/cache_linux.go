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

// sequentialMapping asks for readahead on the mapping of size bytes at
// base, which bbolt mapped with MADV_RANDOM: a closed volume read from
// start to end (an export) is then read in large requests instead of a
// page at each fault.
func sequentialMapping(base uintptr, size int64) {
	unix.Syscall(unix.SYS_MADVISE, base, uintptr(size), unix.MADV_SEQUENTIAL)
}

// dropCache drops the file's clean, unmapped pages from the page cache
// (see randomAccess).
func dropCache(f *os.File) { unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED) }
