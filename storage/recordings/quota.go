package recordings

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Quota bounds the bytes a store keeps: a size, or a share of the file
// system that holds it. The zero value means 10 percent.
type Quota struct {
	Bytes   int64
	Percent float64
}

// ErrQuota marks a quota that cannot be parsed or is out of range.
var ErrQuota = errors.New("recordings: bad quota")

// ParseQuota reads "80%", "4GiB", "500MB", "1.5G" or a number of bytes.
func ParseQuota(s string) (Quota, error) {
	s = strings.TrimSpace(s)
	if p, ok := strings.CutSuffix(s, "%"); ok {
		v, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || v <= 0 || v > 100 {
			return Quota{}, fmt.Errorf("%w: %q (a percentage must be within 0..100)", ErrQuota, s)
		}
		return Quota{Percent: v}, nil
	}
	n, err := ParseSize(s)
	if err != nil {
		return Quota{}, fmt.Errorf("%w: %q: %w", ErrQuota, s, err)
	}
	return Quota{Bytes: n}, nil
}

// ParseSize reads a byte size with an optional unit: B, kB/KiB, MB/MiB,
// GB/GiB, TB/TiB (K, M, G, T alone are binary units).
func ParseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := s, ""
	if i >= 0 {
		num, unit = strings.TrimSpace(s[:i]), strings.TrimSpace(s[i:])
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("%q is not a size", s)
	}
	mult := map[string]float64{
		"": 1, "b": 1,
		"k": 1 << 10, "kib": 1 << 10, "kb": 1e3,
		"m": 1 << 20, "mib": 1 << 20, "mb": 1e6,
		"g": 1 << 30, "gib": 1 << 30, "gb": 1e9,
		"t": 1 << 40, "tib": 1 << 40, "tb": 1e12,
	}[strings.ToLower(unit)]
	if mult == 0 {
		return 0, fmt.Errorf("unknown unit %q (use B, MB, MiB, GB, GiB...)", unit)
	}
	if v*mult > 1<<62 {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return int64(v * mult), nil
}

// String shows the quota as ParseQuota reads it.
func (q Quota) String() string {
	if q.Percent > 0 {
		return strconv.FormatFloat(q.Percent, 'f', -1, 64) + "%"
	}
	return strconv.FormatInt(q.Bytes, 10)
}

// fsSpace returns the size of the file system holding dir (or its nearest
// existing parent), the bytes free on it and the bytes in use.
func fsSpace(dir string) (total, free, used int64, err error) {
	for {
		var st syscall.Statfs_t
		err = syscall.Statfs(dir, &st)
		if err == nil {
			bs := int64(st.Bsize)
			return int64(st.Blocks) * bs, int64(st.Bavail) * bs, int64(st.Blocks-st.Bfree) * bs, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return 0, 0, 0, err
		}
		dir = parent
	}
}
