//go:build unix && !linux

package passthrough_test

import "os"

// unread returns -1: how many bytes wait in a pipe is not told here, and
// writeFIFO does not wait for the reader.
func unread(*os.File) int { return -1 }
