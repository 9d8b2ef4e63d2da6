package passthrough_test

import (
	"os"

	"golang.org/x/sys/unix"
)

// unread returns how many bytes wait in a pipe, or -1 if that cannot be
// told.
func unread(f *os.File) int {
	n := -1
	c, err := f.SyscallConn()
	if err != nil {
		return n
	}
	c.Control(func(fd uintptr) {
		if v, err := unix.IoctlGetInt(int(fd), unix.TIOCINQ); err == nil {
			n = v
		}
	})
	return n
}
