package device

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// watchdogTimeout asks the driver for its timeout (0 if it will not say).
func watchdogTimeout(f *os.File) time.Duration {
	secs, err := unix.IoctlGetInt(int(f.Fd()), unix.WDIOC_GETTIMEOUT)
	if err != nil || secs <= 0 {
		return 0
	}
	return time.Duration(secs) * time.Second
}
