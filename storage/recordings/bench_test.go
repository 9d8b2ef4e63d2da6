package recordings

import (
	"io"
	"testing"
	"time"

	"github.com/camd-project/camd/media/fmp4/fmp4test"
)

// BenchmarkTimelineDay lists a day of motion recording: a 20 s span every
// minute (1440 spans) over a few hundred volumes.
func BenchmarkTimelineDay(b *testing.B) {
	e := newEnv(b, Options{NoSync: true, VolumeSize: 1 << 20, Quota: Quota{Bytes: 1 << 40}})
	rec := newRecorder(&fmp4test.Source{Start: day, FrameBytes: 200})
	for range 24 * 60 {
		for _, f := range rec.fragments(1, 20*time.Second) {
			if err := e.store.Append(f); err != nil {
				b.Fatal(err)
			}
		}
		rec.src.Frames(40 * time.Second)
		rec.fr.Flush()
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

// BenchmarkExport reads a 10-minute export of 2 Mbps recording from the
// page cache.
func BenchmarkExport(b *testing.B) {
	e := newEnv(b, Options{NoSync: true, VolumeSize: 64 << 20, Quota: Quota{Bytes: 1 << 40}})
	rec := newRecorder(&fmp4test.Source{Start: day, FrameBytes: 7000, Audio: true}) // about 2 Mbps
	for range 10 {
		e.record(rec.fragments(1, time.Minute))
	}
	buf := make([]byte, 32<<10)
	b.ResetTimer()
	var size int64
	for range b.N {
		x, err := e.store.Export(1, day, day.Add(10*time.Minute))
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{x}, buf)
		x.Close()
		if err != nil || n != x.Size() {
			b.Fatalf("read %d of %d: %v", n, x.Size(), err)
		}
		size = n
	}
	b.SetBytes(size)
}
