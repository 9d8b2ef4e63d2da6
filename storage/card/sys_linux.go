package card

import (
	"golang.org/x/sys/unix"
)

// devOf returns the device number of the file system that holds path.
func devOf(path string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, err
	}
	return uint64(st.Dev), nil
}

func splitDev(dev uint64) (major, minor uint32) { return unix.Major(dev), unix.Minor(dev) }

// usage is what statfs says of a file system.
type usage struct {
	total, free, used int64
	readOnly          bool
}

func space(path string) (usage, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return usage{}, err
	}
	bs := int64(st.Bsize)
	return usage{
		total:    int64(st.Blocks) * bs,
		free:     int64(st.Bavail) * bs,
		used:     int64(st.Blocks-st.Bfree) * bs,
		readOnly: st.Flags&unix.ST_RDONLY != 0,
	}, nil
}

// mountFlags are the mount options that are flags of mount(2); the
// others of a mount's options are the kernel's own (rw, relatime is the
// default).
var mountFlags = map[string]uintptr{
	"nosuid": unix.MS_NOSUID, "nodev": unix.MS_NODEV, "noexec": unix.MS_NOEXEC,
	"sync": unix.MS_SYNCHRONOUS, "dirsync": unix.MS_DIRSYNC,
	"noatime": unix.MS_NOATIME, "nodiratime": unix.MS_NODIRATIME,
	"relatime": unix.MS_RELATIME, "strictatime": unix.MS_STRICTATIME,
	"lazytime": unix.MS_LAZYTIME,
}

// mount mounts the file system of type fstype on the device at point,
// read-write, with the mount flags of opts and the file system's options
// data.
func mount(device, point, fstype string, opts []string, data string) error {
	var flags uintptr
	for _, o := range opts {
		flags |= mountFlags[o]
	}
	return unix.Mount(device, point, fstype, flags, data)
}

func unmount(point string) error { return unix.Unmount(point, 0) }

// exclusive reports whether the block device at path can be claimed for
// itself: open(2) with O_EXCL fails with EBUSY while a file system on it
// is mounted anywhere (in any mount namespace) or another program holds
// it exclusively. A file that is not a block device always can.
func exclusive(path string) (bool, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_EXCL|unix.O_CLOEXEC, 0)
	if err == unix.EBUSY {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	unix.Close(fd)
	return true, nil
}
