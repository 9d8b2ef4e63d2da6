//go:build !linux

package volume

import "os"

// unmapFile does nothing here: the mapping of an abandoned handle stays
// until the process exits.
func unmapFile(*os.File, uintptr) {}
