package recordings

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkTimelineDay lists a day of motion recording: a 20 s span every
// minute (1440 spans) over a few hundred volumes.
func BenchmarkTimelineDay(b *testing.B) {
	e := newEnv(b, Options{NoSync: true, VolumeSize: 1 << 20, Quota: Quota{Bytes: 1 << 40}})
	rec := &source{Start: day, FrameBytes: 200}
	for range 24 * 60 {
		for _, f := range rec.fragments(1, 20*time.Second) {
			if err := e.store.Append(f); err != nil {
				b.Fatal(err)
			}
		}
		rec.skip(40 * time.Second)
	}
	st := e.store.Stats()
	b.ResetTimer()
	var tl Timeline
	for range b.N {
		var err error
		if tl, err = e.store.Timeline(1, day, day.Add(24*time.Hour)); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if len(tl.Spans) < 1400 {
		b.Fatalf("%d spans", len(tl.Spans))
	}
	b.ReportMetric(float64(len(tl.Spans)), "spans")
	b.ReportMetric(float64(st.Volumes), "volumes")
}

// BenchmarkExport reads a 10-minute clip of 2 Mbps recording, part after
// part as an export does, across closed volumes (opening a closed volume
// evicts it from the page cache: its pages come from the disk, with
// readahead).
func BenchmarkExport(b *testing.B) {
	e := newEnv(b, Options{NoSync: true, VolumeSize: 64 << 20, Quota: Quota{Bytes: 1 << 40}})
	rec := &source{Start: day, FrameBytes: 7000, Audio: true} // about 2 Mbps
	for range 10 {
		e.record(rec.fragments(1, time.Minute))
	}
	buf := make([]byte, 0, 1<<20)
	b.ResetTimer()
	var size int64
	for range b.N {
		c, err := e.store.Clip(1, day, day.Add(10*time.Minute))
		if err != nil {
			b.Fatal(err)
		}
		size = 0
		for i := range c.Parts() {
			if buf, err = c.Read(i, buf[:0]); err != nil {
				b.Fatal(err)
			}
			size += int64(len(buf))
		}
		c.Close()
	}
	b.SetBytes(size)
}

// BenchmarkLoop2Mbps records 0.9 s fragments of 2 Mbps (fsynced) into a
// store whose volumes already fill its quota, for as long as it takes to
// write its volumes twice over, and reports the bytes the process wrote
// to the disk per byte of media: in the steady state of loop overwrite,
// with each new volume made in the oldest one's file ("reuse", what the
// store does) or in a new file while the oldest is deleted ("new files").
// CAMD_BENCH_DIR puts the store elsewhere than the test's temporary
// directory (on a FAT file system, say).
func BenchmarkLoop2Mbps(b *testing.B) {
	const fragBytes = 2_000_000 / 8 * 9 / 10
	for _, c := range []struct {
		name    string
		noReuse bool
	}{{"reuse", false}, {"new files", true}} {
		b.Run(c.name, func(b *testing.B) {
			opts := Options{VolumeSize: 16 << 20, Quota: Quota{Bytes: 64 << 20}}
			if d := os.Getenv("CAMD_BENCH_DIR"); d != "" {
				opts.Dir = filepath.Join(d, strings.ReplaceAll(c.name, " ", "-"))
				os.RemoveAll(opts.Dir)
			}
			e := newEnv(b, opts)
			e.store.noReuse = c.noReuse
			rec := &source{Start: day, FrameBytes: fragBytes / 33}
			// Fill the quota and more: the steady state.
			n := int(2 * opts.Quota.Bytes / fragBytes)
			e.record(rec.fragments(1, time.Duration(n)*time.Second))
			w0, s0 := writeBytes(), e.store.Stats()
			b.ResetTimer()
			for range b.N {
				e.record(rec.fragments(1, time.Duration(n)*time.Second))
			}
			b.StopTimer()
			s1 := e.store.Stats()
			media := s1.Written - s0.Written
			b.SetBytes(media / int64(b.N))
			if w := writeBytes() - w0; w > 0 {
				b.ReportMetric(float64(w)/float64(media), "written/media")
			}
			b.ReportMetric(float64(s1.Fragments-s0.Fragments)/float64(b.N), "fragments/op")
		})
	}
}

// writeBytes reads this process's write_bytes from /proc/self/io: what
// it sent to the block layer, or 0 where there is no such file.
func writeBytes() int64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "write_bytes: "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}
