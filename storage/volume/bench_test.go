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

// benchDir returns a directory for a benchmark's volumes, removed
// after it: in CAMD_BENCH_DIR (another file system) when set.
func benchDir(b *testing.B) string {
	dir := os.Getenv("CAMD_BENCH_DIR")
	if dir == "" {
		return b.TempDir()
	}
	dir, err := os.MkdirTemp(dir, "bench")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// BenchmarkCommit appends 0.9 s fragments of 2 Mbps video (225 KB),
// each its own commit (as a card that keeps up sees them), in a file of
// the ring: reused in place, full size, so that nothing grows. It
// reports the time of a commit (ns/op: its writes and its two
// fdatasyncs), the bytes it wrote to the page cache beyond the fragment
// (write_bytes, whole pages: 0 on tmpfs; run it on a disk's file
// system, CAMD_BENCH_DIR), and bbolt's writes per commit (one per
// dirty page or run of overflow pages, the meta page included).
func BenchmarkCommit(b *testing.B) {
	const fragBytes = 2_000_000 / 8 * 9 / 10
	path := filepath.Join(benchDir(b), "vol-1.db")
	opts := Options{MaxSize: 32 << 20}
	payload := data(fragBytes, 7)
	frame := func(i int) Fragment {
		return Fragment{Key: Key{1, t0 + int64(i)*int64(900*time.Millisecond)}, Duration: 900 * time.Millisecond}
	}
	// The ring's file: a volume filled once.
	v, err := Create(path, 1, opts)
	if err != nil {
		b.Fatal(err)
	}
	i := 0
	for ; ; i++ {
		if err := v.Append(frame(i), payload, nil); err == ErrFull {
			break
		} else if err != nil {
			b.Fatal(err)
		}
	}
	v.Close()
	id := uint64(2)
	reuse := func() {
		v, err = Reuse(path, id, Options{MaxSize: opts.MaxSize, Named: true})
		if err != nil {
			b.Fatal(err)
		}
		id++
		// The first fragment writes the init segment; the rest do not.
		if err := v.Append(frame(i), payload, []byte("init")); err != nil {
			b.Fatal(err)
		}
		i++
	}
	reuse()
	defer func() { v.Close() }()
	txWrites := func() int64 {
		st := v.db.Stats()
		return st.TxStats.GetWrite()
	}
	var written, writes int64
	b.ResetTimer()
	b.StopTimer()
	for range b.N {
		w0, s0 := writeBytes(), txWrites()
		b.StartTimer()
		err := v.Append(frame(i), payload, nil)
		b.StopTimer()
		i++
		if err == ErrFull {
			v.Close()
			reuse()
			w0, s0 = writeBytes(), txWrites()
			b.StartTimer()
			err = v.Append(frame(i), payload, nil)
			b.StopTimer()
			i++
		}
		if err != nil {
			b.Fatal(err)
		}
		written += writeBytes() - w0
		writes += txWrites() - s0
	}
	if written > 0 {
		b.ReportMetric(float64(written)/float64(b.N), "written_B/commit")
		b.ReportMetric(float64(written-int64(b.N)*fragBytes)/float64(b.N), "beyond_fragment_B/commit")
	}
	b.ReportMetric(float64(writes)/float64(b.N), "bbolt_writes/commit")
}

// BenchmarkReuse makes a new volume in a full volume's file, in place,
// with its directory fsynced (named=false: what a start does to
// complete a creation cut short, and every reuse did before) or not
// (named=true: the ring's oldest file, whose name is durable).
func BenchmarkReuse(b *testing.B) {
	for _, named := range []bool{false, true} {
		b.Run(fmt.Sprintf("named=%v", named), func(b *testing.B) {
			path := filepath.Join(benchDir(b), "vol-1.db")
			opts := Options{MaxSize: 4 << 20}
			v, err := Create(path, 1, opts)
			if err != nil {
				b.Fatal(err)
			}
			for i := 0; ; i++ {
				if err := v.Append(frag(1, i), data(100_000, byte(i)), nil); err == ErrFull {
					break
				} else if err != nil {
					b.Fatal(err)
				}
			}
			v.Close()
			opts.Named = named
			b.ResetTimer()
			for i := range b.N {
				v, err := Reuse(path, uint64(i+2), opts)
				if err != nil {
					b.Fatal(err)
				}
				v.Close()
			}
		})
	}
}
