package volume

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// writeBytes reads this process's write_bytes from /proc/self/io: what
// it sent to the block layer, or 0 where there is no such file.
func writeBytes() int64 {
	f, err := os.Open("/proc/self/io")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "write_bytes: "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

// BenchmarkAppend2Mbps appends 0.9 s fragments of 2 Mbps video, fsynced,
// and reports the bytes written to disk per byte of media.
func BenchmarkAppend2Mbps(b *testing.B) {
	const fragBytes = 2_000_000 / 8 * 9 / 10
	dir := b.TempDir()
	v, err := Create(filepath.Join(dir, "vol-1.db"), 1, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { v.Close() }()
	payload := data(fragBytes, 7)
	// Warm up past the first file growths.
	for i := range 20 {
		v.Append(Fragment{Key: Key{1, t0 + int64(i)*int64(900*time.Millisecond)}, Duration: 900 * time.Millisecond}, payload, nil)
	}
	w0 := writeBytes()
	b.SetBytes(fragBytes)
	b.ResetTimer()
	for i := range b.N {
		k := Key{1, t0 + int64(i+20)*int64(900*time.Millisecond)}
		err := v.Append(Fragment{Key: k, Duration: 900 * time.Millisecond}, payload, nil)
		if err == ErrFull { // the next volume, as the store does
			v.Close()
			if v, err = Create(filepath.Join(dir, fmt.Sprintf("vol-%d.db", i)), uint64(i), Options{}); err == nil {
				err = v.Append(Fragment{Key: k, Duration: 900 * time.Millisecond}, payload, nil)
			}
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if w := writeBytes() - w0; w > 0 {
		b.ReportMetric(float64(w)/float64(int64(b.N)*fragBytes), "written/media")
	}
}
