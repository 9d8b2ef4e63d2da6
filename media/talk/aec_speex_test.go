//go:build cgo && linux && (amd64 || camd_speexdsp)

package talk

import (
	"math"
	"math/rand/v2"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// room is a simulated room between the speaker and the microphone: the
// direct path and two reflections (delay, loss in dB).
var room = []struct {
	delay time.Duration
	loss  float64
}{{30 * time.Millisecond, 6}, {47 * time.Millisecond, 14}, {81 * time.Millisecond, 22}}

// farVoice is n samples of a noise-like far end: white noise low-passed
// (a telephone voice's spectrum, falling above 1 kHz) at about -18 dBFS,
// its level changing every 200 ms like syllables.
func farVoice(rng *rand.Rand, n int) []int16 {
	out := make([]int16, n)
	var lp float64
	gain := 1.0
	for i := range out {
		if i%(Rate/5) == 0 {
			gain = 0.3 + 0.7*rng.Float64()
		}
		lp += 0.15 * (rng.NormFloat64() - lp)
		out[i] = int16(max(-32768, min(32767, 9000*gain*lp/0.3)))
	}
	return out
}

// echoRun plays far on a speaker whose echo comes back through room into
// a microphone that also hears near, through a Canceller, in 20 ms
// blocks on a fake clock; it returns the microphone before (echo and
// near end) and after the canceller, and the echo alone.
func echoRun(t testing.TB, opts CancellerOptions, far, near []int16) (mic, out, echo []int16) {
	mic, out, echo, _ = echoRunSkipping(t, opts, far, near, -1, 0)
	return mic, out, echo
}

// echoRunSkipping is echoRun with a microphone that loses the blocks
// from skipFrom for skip of them (the canceller does not see them).
func echoRunSkipping(t testing.TB, opts CancellerOptions, far, near []int16, skipFrom, skip int) (mic, out, echo []int16, st CancellerStats) {
	t.Helper()
	now := time.Unix(1000, 0)
	opts.Now = func() time.Time { return now }
	c, err := NewCanceller(opts)
	if err != nil {
		t.Fatal(err)
	}
	n := len(far)
	echo = make([]int16, n)
	for i := range echo {
		var v float64
		for _, r := range room {
			if j := i - int(r.delay*Rate/time.Second); j >= 0 {
				v += float64(far[j]) * math.Pow(10, -r.loss/20)
			}
		}
		echo[i] = int16(v)
	}
	mic = make([]int16, n)
	out = make([]int16, n)
	const block = 960
	for i := 0; i+block <= n; i += block {
		at := now
		c.Far(far[i : i+block])
		for j := i; j < i+block; j++ {
			mic[j] = int16(max(-32768, min(32767, int(echo[j])+int(near[j]))))
		}
		copy(out[i:i+block], mic[i:i+block])
		if b := i / block; b < skipFrom || b >= skipFrom+skip {
			c.Mic(out[i:i+block], at)
		}
		now = now.Add(20 * time.Millisecond)
	}
	return mic, out, echo, c.Stats()
}

// TestCancellerAfterJump: a microphone that loses 300 ms at 3 s (a
// loaded machine) is counted, and the echo is cancelled again a second
// later (ERLE at least 25 dB from 4 s on).
func TestCancellerAfterJump(t *testing.T) {
	far := farVoice(rand.New(rand.NewPCG(1, 2)), 6*Rate)
	_, out, echo, st := echoRunSkipping(t, CancellerOptions{}, far, make([]int16, len(far)), 150, 15)
	erle := db(power(echo[4*Rate:]) / power(out[4*Rate:]))
	t.Logf("ERLE 3.3 to 4 s: %.1f dB", db(power(echo[33*Rate/10:4*Rate])/power(out[33*Rate/10:4*Rate])))
	t.Logf("ERLE from 4 s on: %.1f dB; %+v", erle, st)
	if st.Jumps != 1 || erle < 25 {
		t.Fatalf("ERLE %.1f dB after a jump, %d jumps", erle, st.Jumps)
	}
}

func power(pcm []int16) float64 {
	var e float64
	for _, s := range pcm {
		e += float64(s) * float64(s)
	}
	return e / float64(max(len(pcm), 1))
}

func db(ratio float64) float64 { return 10 * math.Log10(ratio) }

// toneAmp is the amplitude of pcm's component at hz.
func toneAmp(pcm []int16, hz float64) float64 {
	var re, im float64
	for i, s := range pcm {
		w := 2 * math.Pi * hz * float64(i) / Rate
		re += float64(s) * math.Cos(w)
		im += float64(s) * math.Sin(w)
	}
	return 2 * math.Hypot(re, im) / float64(len(pcm))
}

// TestCancellerRemovesEcho: a noise-like far end through a room of
// three paths (30 ms at -6 dB, 47 ms, 81 ms) comes back at least 25 dB
// quieter after 2 s of convergence (echo return loss enhancement), with
// the adaptive filter alone at least 15 dB; the near end's 440 Hz tone
// gets through alone and while the far end talks (double talk), and the
// echo stays cancelled then. With -short (the ARM builds under
// qemu-user, where the filter costs many times its native CPU) the filter
// alone is left out.
func TestCancellerRemovesEcho(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const secs = 6
	far := farVoice(rng, secs*Rate)
	silent := make([]int16, secs*Rate)
	for _, tc := range []struct {
		name string
		opts CancellerOptions
		want float64
	}{{"filter", CancellerOptions{NoSuppress: true}, 15}, {"filter+suppressor", CancellerOptions{}, 25}} {
		t.Run(tc.name, func(t *testing.T) {
			if testing.Short() && tc.opts.NoSuppress {
				t.Skip("-short: the filter alone")
			}
			_, out, echo := echoRun(t, tc.opts, far, silent)
			conv := 2 * Rate
			erle := db(power(echo[conv:]) / power(out[conv:]))
			t.Logf("ERLE after 2 s: %.1f dB (echo %.1f dBFS)", erle, db(power(echo[conv:])/(32768*32768)))
			if erle < tc.want {
				t.Fatalf("ERLE %.1f dB, want at least %.0f", erle, tc.want)
			}
		})
	}

	// Double talk: the near end's 440 Hz tone (as loud as the echo)
	// from second 3, while the far end keeps talking.
	near := make([]int16, secs*Rate)
	for i := 3 * Rate; i < len(near); i++ {
		near[i] = int16(3000 * math.Sin(2*math.Pi*440*float64(i)/Rate))
	}
	_, both, echo := echoRun(t, CancellerOptions{}, far, near)
	dt := db(math.Pow(3000/toneAmp(both[4*Rate:], 440), 2))
	// The near end alone, no far end.
	_, alone, _ := echoRun(t, CancellerOptions{}, silent, near)
	at := db(math.Pow(3000/toneAmp(alone[4*Rate:], 440), 2))
	// What is left of the echo in double talk: the output less the
	// near end's alone.
	residual := make([]int16, len(both))
	for i := range residual {
		residual[i] = both[i] - alone[i]
	}
	erle := db(power(echo[4*Rate:]) / power(residual[4*Rate:]))
	t.Logf("double talk: the near end's tone attenuated %.1f dB (%.1f dB alone), the echo %.1f dB", dt, at, erle)
	if dt > 6 || at > 1 {
		t.Fatalf("the near end's tone attenuated %.1f dB in double talk, %.1f dB alone", dt, at)
	}
	if erle < 10 {
		t.Fatalf("double talk: the echo attenuated %.1f dB", erle)
	}
}

// threadCPU is the CPU time this thread used, in ns.
func threadCPU() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_THREAD, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// BenchmarkCanceller: the cost of one 20 ms block of the microphone at
// 48 kHz, with the far end talking.
func BenchmarkCanceller(b *testing.B) {
	for _, tc := range []struct {
		name string
		opts CancellerOptions
	}{{"filter+suppressor", CancellerOptions{}}, {"filter", CancellerOptions{NoSuppress: true}}} {
		b.Run(tc.name, func(b *testing.B) {
			now := time.Unix(1000, 0)
			tc.opts.Now = func() time.Time { return now }
			c, err := NewCanceller(tc.opts)
			if err != nil {
				b.Fatal(err)
			}
			far := farVoice(rand.New(rand.NewPCG(1, 2)), Rate)
			mic := make([]int16, 960)
			// The CPU time of this thread, besides the wall time: on a
			// loaded machine the wall time counts other processes.
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			cpu0 := threadCPU()
			n := 0
			for i := 0; b.Loop(); i++ {
				k := i % 50 * 960
				c.Far(far[k : k+960])
				copy(mic, far[k:k+960])
				c.Mic(mic, now)
				now = now.Add(20 * time.Millisecond)
				n++
			}
			b.ReportMetric(float64(threadCPU()-cpu0)/float64(n), "cpu-ns/op")
			b.ReportMetric(float64(threadCPU()-cpu0)/float64(n)/20e6*100, "%core")
		})
	}
}
