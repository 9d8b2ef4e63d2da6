package whep

import (
	"errors"
	"net"
	"unsafe"

	"golang.org/x/sys/unix"
)

// gsoSpace is the room one UDP_SEGMENT control message takes.
var gsoSpace = unix.CmsgSpace(2)

// gsoSupported says whether the kernel segments UDP for conn (UDP GSO,
// Linux 4.18 and later): reading the UDP_SEGMENT option fails where it
// does not.
func gsoSupported(conn *net.UDPConn) bool {
	rc, err := conn.SyscallConn()
	if err != nil {
		return false
	}
	ok := false
	rc.Control(func(fd uintptr) {
		_, err := unix.GetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_SEGMENT)
		ok = err == nil
	})
	return ok
}

// putGSO writes into b (gsoSpace bytes) the control message that has
// the kernel cut a message into datagrams of size bytes.
func putGSO(b []byte, size int) {
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = unix.IPPROTO_UDP, unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	*(*uint16)(unsafe.Pointer(&b[unix.CmsgLen(0)])) = uint16(size)
}

// gsoRefused says whether a send failed because the route cannot
// segment (EIO: a device without checksum offload) or the kernel took
// the segments for invalid.
func gsoRefused(err error) bool {
	return errors.Is(err, unix.EIO) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP)
}
