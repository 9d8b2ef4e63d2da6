package card

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Mount is one line of the mount table, /proc/self/mountinfo (proc(5)).
type Mount struct {
	// Major and Minor are the file system's device number, the st_dev
	// of its files.
	Major, Minor uint32
	// Root is the directory of the file system mounted; Point is where.
	Root, Point string
	// Options are the mount's own: rw or ro, nosuid, noatime...
	Options []string
	FSType  string
	// Source is what was mounted: the block device (/dev/mmcblk0p1),
	// or a name (tmpfs).
	Source string
	// Super are the file system's options: rw or ro, errors=remount-ro,
	// emergency_ro (ext4 after an error), the codepage of FAT...
	Super []string
}

// ReadOnly reports whether writes to the mount fail: it or its file
// system is read-only, or ext4 made itself so after an error
// (emergency_ro, which statfs does not show).
func (m Mount) ReadOnly() bool {
	return slices.Contains(m.Options, "ro") || slices.Contains(m.Super, "ro") || slices.Contains(m.Super, "emergency_ro")
}

// ErrMountInfo marks a mount table line that cannot be read.
var ErrMountInfo = errors.New("card: malformed mountinfo line")

// ParseMountInfo reads a mount table in the format of
// /proc/self/mountinfo.
func ParseMountInfo(b []byte) ([]Mount, error) {
	var ms []Mount
	n := 0
	for line := range strings.Lines(string(b)) {
		n++
		line = strings.TrimRight(line, "\n")
		if line == "" {
			continue
		}
		m, err := parseMount(line)
		if err != nil {
			return nil, fmt.Errorf("%w %d: %v", ErrMountInfo, n, err)
		}
		ms = append(ms, m)
	}
	return ms, nil
}

// parseMount reads one line: ID, parent ID, major:minor, root, mount
// point, mount options, optional fields ended by "-", type, source,
// super options.
func parseMount(line string) (Mount, error) {
	f := strings.Split(line, " ")
	if len(f) < 10 {
		return Mount{}, errors.New("too few fields")
	}
	sep := slices.Index(f[6:], "-")
	if sep < 0 || len(f) != 6+sep+4 {
		return Mount{}, errors.New("no separator before the last three fields")
	}
	sep += 6
	maj, min, ok := strings.Cut(f[2], ":")
	major, err1 := strconv.ParseUint(maj, 10, 32)
	minor, err2 := strconv.ParseUint(min, 10, 32)
	if !ok || err1 != nil || err2 != nil {
		return Mount{}, fmt.Errorf("device number %q", f[2])
	}
	return Mount{
		Major: uint32(major), Minor: uint32(minor),
		Root: unescape(f[3]), Point: unescape(f[4]),
		Options: strings.Split(f[5], ","),
		FSType:  unescape(f[sep+1]), Source: unescape(f[sep+2]),
		Super: strings.Split(f[sep+3], ","),
	}, nil
}

// unescape undoes the kernel's octal escapes of space, tab, newline and
// backslash (\040, \011, \012, \134).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
