package volume

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"syscall"
)

// A page of the file that the card cannot serve any more makes bbolt's
// read of it through the memory mapping fault (SIGBUS), and Go turns an
// unexpected fault into a fatal error that no recover catches: one bad
// sector under a recording would kill camd, live view with it. So every
// use of a mapping runs in guard, on the goroutine that reads it, with
// debug.SetPanicOnFault on: the fault becomes a panic there, and the
// panic an error. A fault inside the file's pages is the card failing
// (EIO); one outside them, or any other panic, is bbolt following damage
// (ErrDamaged).
//
// bbolt cleans up after a panic inside a transaction (it rolls back), but
// not after one while it begins a transaction or rolls one back: it may
// then still hold its locks, and closing it would wait for ever. Such a
// handle is abandoned: it is never used again, and Close, once no
// goroutine uses the handle, removes its mapping itself (bbolt's handle
// dropped first: its pointers lead into it) and closes its file (which
// releases the file's lock, so the volume can be opened again). A fault
// while bbolt opens the file loses bbolt's handle: its mapping is removed
// at once. Either way a fault never keeps a volume's worth of address
// space (256 MiB, much of a 32-bit process's) mapped. A writable handle
// is abandoned after any panic. Before bbolt reads the meta pages under
// its locks, plain reads of them (probeMeta) answer EIO where that does
// no harm, and leave them in the page cache for bbolt.

// guard runs fn with faults of the memory mapping turned into panics of
// this goroutine, and panics into errors (see panicError). It reports
// whether fn panicked.
func guard(fn func() error, onPanic func(r any) error) (panicked bool, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			panicked, err = true, onPanic(r)
		}
	}()
	return false, fn()
}

// faultAddr returns the address of a fault that SetPanicOnFault turned
// into the panic r.
func faultAddr(r any) (uintptr, bool) {
	f, ok := r.(interface{ Addr() uintptr })
	if !ok {
		return 0, false
	}
	return f.Addr(), true
}

// errFault is the error of a page of path that could not be read through
// the mapping: an I/O error, as read(2) would have returned.
func errFault(path string, addr uintptr) error {
	return fmt.Errorf("volume: %s: a page could not be read (fault at %#x): %w", path, addr, syscall.EIO)
}

// panicError turns a panic in one of the volume's transactions into an
// error: a fault on the file's pages is an I/O error, anything else
// damage.
func (v *Volume) panicError(r any) error {
	if addr, ok := faultAddr(r); ok && v.inFile(addr) {
		return errFault(v.path, addr)
	}
	return fmt.Errorf("%w: %s: %v", ErrDamaged, v.path, r)
}

// inFile reports whether addr lies in the mapping of the file's pages
// (past them, a fault is bbolt reading where no page is).
func (v *Volume) inFile(addr uintptr) bool {
	fi, err := v.file.Stat()
	if err != nil {
		return true // the card again
	}
	return addr >= v.base && addr-v.base < uintptr(fi.Size())
}

// guard runs fn, a use of the volume's mapping, under guard.
func (v *Volume) guard(fn func() error) (panicked bool, err error) {
	return guard(fn, v.panicError)
}

// release lets go of the file of a handle given up: its lock, which
// closing the file would not release while the mapping holds it, and the
// file.
func release(f *os.File) error {
	err := unlock(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// abandon gives up a handle that bbolt may have left with its locks held.
func (v *Volume) abandon() { v.broken.Store(true) }

// usable fails once the handle was abandoned.
func (v *Volume) usable() error {
	if v.broken.Load() {
		return fmt.Errorf("volume: %s: given up after a read fault: %w", v.path, syscall.EIO)
	}
	return nil
}

// probeMeta reads the two meta pages with plain reads: bbolt reads them
// through the mapping, holding its locks, when it begins a transaction.
func (v *Volume) probeMeta() error {
	var b [1]byte
	for _, off := range []int64{0, int64(v.pageSize)} {
		if _, err := v.file.ReadAt(b[:], off); err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("volume: %s: %w", v.path, err)
		}
	}
	return nil
}

// probeHeader reads the start of a file that bbolt called invalid: it
// says so of a header it could not read, too. It returns the read error,
// or nil if the header could be read (and is not bbolt's).
func probeHeader(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.ReadAt(make([]byte, 8192), 0); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}
