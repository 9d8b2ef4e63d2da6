package volume

import (
	"bufio"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// area is one line of /proc/self/maps.
type area struct {
	start, end, offset uint64
	dev, ino           uint64
}

// unmapFile removes the mapping of f that holds addr, whole: bbolt maps a
// volume in one piece, which madvise may have split into several areas.
// It is only for a handle given up after a fault (see fault.go), whose
// mapping nothing may touch any more. It does nothing when no mapping of
// f holds addr.
func unmapFile(f *os.File, addr uintptr) {
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return
	}
	dev := unix.Mkdev(unix.Major(uint64(st.Dev)), unix.Minor(uint64(st.Dev)))
	areas := fileAreas(dev, uint64(st.Ino))
	i := 0
	for i < len(areas) && !(areas[i].start <= uint64(addr) && uint64(addr) < areas[i].end) {
		i++
	}
	if i == len(areas) {
		return
	}
	follows := func(a, b area) bool { return a.end == b.start && a.offset+(a.end-a.start) == b.offset }
	first, last := i, i
	for first > 0 && follows(areas[first-1], areas[first]) {
		first--
	}
	for last+1 < len(areas) && follows(areas[last], areas[last+1]) {
		last++
	}
	start, end := areas[first].start, areas[last].end
	unix.Syscall(unix.SYS_MUNMAP, uintptr(start), uintptr(end-start), 0)
}

// fileAreas lists, in address order, the areas of /proc/self/maps that
// map the file dev/ino.
func fileAreas(dev, ino uint64) []area {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []area
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var a area
		var perms string
		var major, minor uint32
		// start-end perms offset major:minor inode [path]
		_, err := fmt.Sscanf(sc.Text(), "%x-%x %s %x %x:%x %d", &a.start, &a.end, &perms, &a.offset, &major, &minor, &a.ino)
		if err != nil {
			continue
		}
		a.dev = unix.Mkdev(major, minor)
		if a.dev == dev && a.ino == ino {
			out = append(out, a)
		}
	}
	return out
}
