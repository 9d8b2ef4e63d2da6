//go:build !linux

package volume

import "os"

// unlock does nothing here: the lock of an abandoned handle stays until
// the process exits.
func unlock(*os.File) error { return nil }
