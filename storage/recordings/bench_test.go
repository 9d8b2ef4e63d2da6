package recordings

import (
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
