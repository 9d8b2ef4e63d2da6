//go:build !linux

package whep

import "net"

const gsoSpace = 0

// gsoSupported: UDP GSO is Linux's.
func gsoSupported(*net.UDPConn) bool { return false }

func putGSO([]byte, int) {}

func gsoRefused(error) bool { return false }
