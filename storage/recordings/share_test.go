package recordings

import (
	"testing"
	"time"
)

// TestQuotaSharesKeepAQuietStreamsHistory records a busy stream (about
// 100 kB/s) and a quiet one (about 7 kB/s, 10 kB a second on disk with
// bbolt's pages) into a small quota (8 MiB): the busy one loops within
// its share, the quiet one keeps its own (6 minutes of its 10 in half the
// quota, 3 in a quarter). With one ring of volumes for both, each kept
// the same stretch of time (about 75 s: 8 MiB at 107 kB/s).
func TestQuotaSharesKeepAQuietStreamsHistory(t *testing.T) {
	const quota, volSize = 8 << 20, 1 << 20
	for _, c := range []struct {
		name string
		// quiet is the quiet stream's share (0: the default, equal).
		quiet float64
		// the quiet stream's history kept, at least and at most
		min, max time.Duration
	}{
		{"equal shares", 0, 330 * time.Second, 600 * time.Second},
		{"a quarter", 0.25, 150 * time.Second, 250 * time.Second},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, Options{Quota: Quota{Bytes: quota}, VolumeSize: volSize})
			e.store.SetShare(3, c.quiet)
			busy := &source{Start: day, FrameBytes: 3000}
			quiet := &source{Start: day, FrameBytes: 200}
			var last Fragment
			for range 600 {
				f := busy.fragments(2, time.Second)
				e.record(f)
				e.record(quiet.fragments(3, time.Second))
				last = f[0]
				if b := dirBytes(t, e.opts.Dir); b > quota+2*volSize {
					t.Fatalf("%d bytes on disk, quota %d + a volume per stream", b, quota)
				}
			}
			end := last.Start.Add(last.Duration)
			kept := func(stream uint32) time.Duration {
				tl, err := e.store.Timeline(stream, day, end)
				if err != nil {
					t.Fatal(err)
				}
				return tl.Recorded
			}
			if k := kept(3); k < c.min || k > c.max {
				t.Fatalf("the quiet stream kept %v, want %v to %v", k, c.min, c.max)
			}
			if k := kept(2); k > 80*time.Second || k < 20*time.Second {
				t.Fatalf("the busy stream kept %v: it did not loop within its share", k)
			}
			t.Logf("kept: busy %v, quiet %v", kept(2), kept(3))
			for _, stream := range []uint32{2, 3} {
				cl, err := e.store.Clip(stream, end.Add(-20*time.Second), end)
				if err != nil {
					t.Fatal(err)
				}
				checkClip(t, cl)
				cl.Close()
			}
		})
	}
}
