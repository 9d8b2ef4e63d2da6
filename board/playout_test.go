package board

import (
	"slices"
	"testing"
	"time"
)

// ramp is samples from, from+1, ...: each says where it was in what
// was played.
func ramp(from, n int) []int16 {
	pcm := make([]int16, n)
	for i := range pcm {
		pcm[i] = int16((from + i) % 30000)
	}
	return pcm
}

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

// playout is l.Playout of n samples from at.
func playout(t *testing.T, l *PlayoutLine, at time.Time, n int) ([]int16, bool) {
	t.Helper()
	dst := ramp(1, n) // not silence: Playout must write all of it
	ok := l.Playout(dst, at)
	return dst, ok
}

// TestPlayoutLine: a device's callbacks, stamped with jitter on a fake
// clock, make one line; a callback stamped past the slack leaves a gap
// of silence, or replaces what the line said played; the ring wraps and
// keeps the last PlayoutWindow; outside it Playout does not know.
func TestPlayoutLine(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := &PlayoutLine{Slack: ms(5)}
	if _, ok := playout(t, l, t0, 480); ok {
		t.Fatal("an empty line knew what played")
	}

	// 10 ms callbacks whose stamps jitter by up to 3 ms: back to back.
	jitter := []time.Duration{0, ms(3), -ms(2), ms(1), ms(3)}
	for i, j := range jitter {
		l.Played(ramp(480*i, 480), t0.Add(ms(10*i)+j))
	}
	if got, ok := playout(t, l, t0.Add(ms(5)), 960); !ok || !slices.Equal(got, ramp(240, 960)) {
		t.Fatalf("jittered callbacks: %v %v..., want %v...", ok, got[:4], ramp(240, 4))
	}
	// At the end of the line (50 ms) and after: not known yet.
	if _, ok := playout(t, l, t0.Add(ms(50)), 480); ok {
		t.Fatal("knew what plays after the line's end")
	}
	// A block that runs past the end: what played, then silence.
	if got, ok := playout(t, l, t0.Add(ms(40)), 960); !ok || !slices.Equal(got[:480], ramp(1920, 480)) || slices.ContainsFunc(got[480:], nonzero) {
		t.Fatalf("block past the end: %v", ok)
	}

	// The device was not fed for 20 ms (stamp 70 ms, the line ended at
	// 50): silence between.
	l.Played(ramp(5000, 480), t0.Add(ms(70)))
	got, ok := playout(t, l, t0.Add(ms(45)), 48*35)
	if !ok || !slices.Equal(got[:240], ramp(2160, 240)) || slices.ContainsFunc(got[240:240+960], nonzero) || !slices.Equal(got[1200:], ramp(5000, 480)) {
		t.Fatalf("dry gap: %v %v / %v / %v", ok, got[:2], got[240:242], got[1200:1202])
	}

	// A callback stamped 10 ms before the line's end (80 ms): it
	// replaces what the line said played from 70 ms on.
	l.Played(ramp(9000, 480), t0.Add(ms(70)))
	if got, ok := playout(t, l, t0.Add(ms(70)), 480); !ok || !slices.Equal(got, ramp(9000, 480)) {
		t.Fatalf("restamped callback: %v %v", ok, got[:2])
	}
	if _, ok := playout(t, l, t0.Add(ms(80)), 1); ok {
		t.Fatal("the line still ends at 90 ms (not 80) after a callback restamped to 70")
	}

	// 3 s more of callbacks, back to back: the ring wraps; it keeps the
	// last 2 s (1.08 s to 3.08 s).
	for i := range 300 {
		l.Played(ramp(480*i, 480), t0.Add(ms(80+10*i)))
	}
	end := t0.Add(ms(3080))
	if got, ok := playout(t, l, end.Add(-ms(1500)), 4800); !ok || !slices.Equal(got, ramp(48*1500, 4800)) {
		t.Fatalf("after the ring wrapped: %v %v, want %v", ok, got[:2], ramp(48*1500, 2))
	}
	// Straddling the oldest sample kept: silence, then what played.
	got, ok = playout(t, l, end.Add(-PlayoutWindow-ms(10)), 960)
	if !ok || slices.ContainsFunc(got[:480], nonzero) || !slices.Equal(got[480:], ramp(48*1000, 480)) {
		t.Fatalf("block straddling the window's start: %v %v / %v", ok, got[:2], got[480:482])
	}
	for _, at := range []time.Time{end.Add(-PlayoutWindow - ms(20)), t0, t0.Add(-time.Hour), end, end.Add(time.Hour)} {
		if got, ok := playout(t, l, at, 960); ok || slices.ContainsFunc(got, nonzero) {
			t.Fatalf("at %v, outside the window (%v to %v): %v", at.Sub(t0), end.Add(-PlayoutWindow).Sub(t0), end.Sub(t0), ok)
		}
	}

	// A device that stopped for an hour starts the line again.
	l.Played(ramp(7, 480), end.Add(time.Hour))
	if _, ok := playout(t, l, end.Add(-ms(10)), 480); ok {
		t.Fatal("kept what played before the hour's stop")
	}
	if got, ok := playout(t, l, end.Add(time.Hour), 480); !ok || !slices.Equal(got, ramp(7, 480)) {
		t.Fatalf("after the stop: %v %v", ok, got[:2])
	}
	l.Reset()
	if _, ok := playout(t, l, end.Add(time.Hour), 480); ok {
		t.Fatal("knew what played after Reset")
	}
}

// TestPlayoutLineQueued: a queue plays a piece after what it still
// has, or from now once it ran dry.
func TestPlayoutLineQueued(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var l PlayoutLine
	l.Queued(ramp(0, 960), t0)
	l.Queued(ramp(960, 960), t0.Add(ms(5))) // queued: plays 20 to 40 ms
	l.Queued(ramp(0, 480), t0.Add(ms(50)))  // dry from 40 ms: plays 50 to 60
	got, ok := playout(t, &l, t0, 48*60)
	if !ok || !slices.Equal(got[:1920], ramp(0, 1920)) || slices.ContainsFunc(got[1920:2400], nonzero) || !slices.Equal(got[2400:], ramp(0, 480)) {
		t.Fatalf("queued: %v %v / %v / %v", ok, got[1918:1920], got[1920:1922], got[2400:2402])
	}
}

// TestSamplesDur: a line counting samples for days stays on time.
func TestSamplesDur(t *testing.T) {
	days := int64(10 * 24 * 3600 * SpeakerRate)
	if d := samplesDur(days + 1); d != 10*24*time.Hour+20833*time.Nanosecond {
		t.Fatalf("10 days and a sample: %v", d)
	}
	if n := durSamples(ms(10)); n != 480 {
		t.Fatalf("10 ms: %d samples", n)
	}
}

func nonzero(s int16) bool { return s != 0 }
