package synthetic

import (
	"math"
	"time"
)

// Beep timing: a beep starts on every wall-clock second, as the clock in the
// picture turns to .000, so the two can be compared for A/V sync.
const (
	beepLen  = 100 * time.Millisecond
	beepRamp = 5 * time.Millisecond // fade in and out, against clicks
	beepGain = 0.3                  // of full scale
)

// tone writes the beep pattern as 16-bit mono samples.
type tone struct {
	hz   float64
	rate int
	// start is the wall-clock time of sample 0.
	start time.Time
}

// fill writes the samples first, first+1, ... into buf.
func (t *tone) fill(buf []int16, first uint64) {
	startNs := t.start.UnixNano()
	for i := range buf {
		k := first + uint64(i)
		// Sample time from the start, then its place in its wall second.
		since := samplesDur(k, t.rate)
		wall := startNs + int64(since)
		intoSecond := time.Duration(wall % int64(time.Second))
		if intoSecond >= beepLen {
			buf[i] = 0
			continue
		}
		gain := beepGain
		if intoSecond < beepRamp {
			gain *= float64(intoSecond) / float64(beepRamp)
		} else if intoSecond > beepLen-beepRamp {
			gain *= float64(beepLen-intoSecond) / float64(beepRamp)
		}
		hz := t.hz
		if (wall/int64(time.Second))%10 == 0 {
			hz *= 2
		}
		phase := 2 * math.Pi * hz * since.Seconds()
		buf[i] = int16(gain * math.MaxInt16 * math.Sin(phase))
	}
}
