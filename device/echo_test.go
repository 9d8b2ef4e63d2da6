package device

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/camd-project/camd/device/calls"
	"github.com/camd-project/camd/internal/testenv"
	"github.com/camd-project/camd/media/talk"
	"github.com/camd-project/camd/media/tonetest"
	"github.com/camd-project/camd/media/whep"
)

// toneAmplitude is the amplitude of pcm's component at hz (48 kHz).
func toneAmplitude(pcm []int16, hz float64) float64 {
	var re, im float64
	for i, s := range pcm {
		w := 2 * math.Pi * hz * float64(i) / 48000
		re += float64(s) * math.Cos(w)
		im += float64(s) * math.Sin(w)
	}
	return 2 * math.Hypot(re, im) / float64(len(pcm))
}

// The simulated room of the echo tests: the speaker comes back into the
// microphone 30 ms later, 6 dB quieter.
const (
	echoDelay = 30 * time.Millisecond
	echoLoss  = 6.0
)

// echoCall answers a call on a simulated board that loops its speaker
// into the microphone (echoDelay, echoLoss) in the duplex mode given;
// the phone talks in PCMU what talk fills (pcm, from sample at) and
// listens in PCMU. It returns the seconds given of what the phone heard
// and what the speaker played.
func echoCall(t *testing.T, duplex string, seconds float64, talk func(pcm []int16, at int)) (d *Daemon, heard, played []int16) {
	t.Helper()
	d = running(t, syntheticSource, func(c *Config) {
		c.Calls.Duplex = duplex
		c.Sim = SimConfig{Echo: true, EchoDelay: echoDelay, EchoLoss: echoLoss}
	})
	ownerToken := owner(t, d)
	c := ring(t, d, ownerToken)
	// No deadline of its own: on a loaded machine (the race detector)
	// the call takes what it takes; the test binary's -timeout, less a
	// tenth of what is left for the report, bounds it.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	if end, ok := t.Deadline(); ok {
		var stop context.CancelFunc
		ctx, stop = context.WithDeadline(ctx, end.Add(-time.Until(end)/10))
		defer stop()
	}
	want := int(seconds * 48000)
	var sent int
	st, err := whep.View(ctx, "https://"+d.Addr().String()+"/api/v1/calls/"+c.ID+"/answer", whep.ViewOptions{
		HTTPClient: testClient(), Header: http.Header{"Authorization": {"Bearer " + ownerToken}},
		Talk: func(pcm []int16) {
			talk(pcm, sent)
			sent += len(pcm)
		},
		PCM: func(pcm []int16) {
			heard = append(heard, pcm...)
			if len(heard) >= want {
				cancel()
			}
		},
	})
	if len(heard) < want {
		t.Fatalf("heard %d samples, %+v %v", len(heard), st, err)
	}
	played, _ = d.board.sim.Speaker.Played()
	return d, heard, played
}

// windows calls f for each whole 20 ms window of pcm.
func windows(pcm []int16, f func(w []int16)) {
	for ; len(pcm) >= 960; pcm = pcm[960:] {
		f(pcm[:960])
	}
}

// toneLevel is the RMS over 50 ms windows of the amplitude of pcm's
// component at hz: the echo's phase jumps where the speaker ran dry for
// a moment, which one long window would average away.
func toneLevel(pcm []int16, hz float64) float64 {
	var power float64
	var n int
	for ; len(pcm) >= 2400; pcm = pcm[2400:] {
		a := toneAmplitude(pcm[:2400], hz)
		power += a * a
		n++
	}
	return math.Sqrt(power / float64(max(n, 1)))
}

// TestHalfDuplexSuppressesEcho: with the simulated board's speaker
// looped into its microphone, a phone in a half-duplex call (the
// default) talking a 1 kHz tone hears its echo at least 20 dB quieter
// than the loop brings it back (what the speaker played, echoLoss dB
// down), and still hears it (the loop is there, the gate's floor is
// 30 dB).
func TestHalfDuplexSuppressesEcho(t *testing.T) {
	const amp = 8000
	_, heard, played := echoCall(t, "half", 2.5, func(pcm []int16, at int) {
		for i := range pcm {
			pcm[i] = int16(amp * math.Sin(2*math.Pi*1000*float64(at+i)/48000))
		}
	})
	// The echo the loop brings back: what played (the speaker volume's
	// 80 % included), echoLoss dB quieter.
	raw := 20 * math.Log10(amp/(toneLevel(played[48000:], 1000)*math.Pow(10, -echoLoss/20)))
	half := 20 * math.Log10(amp/max(toneLevel(heard[48000:], 1000), 1e-3))
	t.Logf("echo return loss: %.1f dB through the loop, %.1f dB in half duplex: %.1f dB of suppression", raw, half, half-raw)
	if raw > 10 {
		t.Fatalf("the loop brings the echo back %.1f dB under the tone; it is %.0f dB and the volume", raw, echoLoss)
	}
	if half-raw < 20 || half-raw > 45 {
		t.Fatalf("half duplex suppressed the echo by %.1f dB, want 20 to 45 (the gate's 30)", half-raw)
	}
}

// farVoice fills pcm (from sample at) with a noise-like far end: white
// noise low-passed like a voice (falling above about 1 kHz) at about -20
// dBFS, its level changing every 200 ms like syllables.
type farVoice struct {
	rng  *rand.Rand
	lp   float64
	gain float64
}

func (v *farVoice) fill(pcm []int16, at int) {
	for i := range pcm {
		if (at+i)%9600 == 0 {
			v.gain = 0.3 + 0.7*v.rng.Float64()
		}
		v.lp += 0.15 * (v.rng.NormFloat64() - v.lp)
		pcm[i] = int16(max(-32767, min(32767, 9000*v.gain*v.lp/0.3)))
	}
}

// median is the median of v (sorted in place).
func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	slices.Sort(v)
	return v[len(v)/2]
}

// meanSquare is pcm's power.
func meanSquare(pcm []int16) float64 {
	var e float64
	for _, s := range pcm {
		e += float64(s) * float64(s)
	}
	return e / float64(len(pcm))
}

// beepLevel is the amplitude of the synthetic microphone's beep (440 Hz,
// 880 Hz every tenth second) in a 20 ms window.
func beepLevel(w []int16) float64 {
	return max(toneAmplitude(w, 440), toneAmplitude(w, 880))
}

// TestFullDuplexCancelsEcho: in a full-duplex call (a build with the
// echo canceller) the phone talks a noise-like voice in PCMU into the
// looped simulated board; from 2.5 s on, what it hears back between
// the camera's beeps is at least 25 dB under the echo the loop brings
// back (echo return loss enhancement, the median of half seconds), and
// the camera's own beep (440 Hz, the near end, 100 ms each second)
// reaches the phone while the phone talks (double talk), at most 6 dB
// down.
func TestFullDuplexCancelsEcho(t *testing.T) {
	if _, err := talk.NewCanceller(talk.CancellerOptions{}); errors.Is(err, talk.ErrNoEchoCanceller) {
		t.Skip(err)
	}
	v := &farVoice{rng: rand.New(rand.NewPCG(1, 2)), gain: 1}
	d, heard, played := echoCall(t, "full", 6, v.fill)
	// The echo the loop brings back: the power of what the speaker
	// played over the time measured, echoLoss dB down.
	const from = 5 * 48000 / 2
	var raw float64
	tail := played[max(0, len(played)-(len(heard)-from)):]
	windows(tail, func(w []int16) { raw += meanSquare(w) })
	raw /= float64(len(tail) / 960)
	raw *= math.Pow(10, -echoLoss/10)
	// What the phone hears of it: the 20 ms windows without the beep,
	// nor next to one; their power from 2.5 s on, and in each half
	// second (logged: the filter converging).
	var levels []float64
	windows(heard, func(w []int16) { levels = append(levels, beepLevel(w)) })
	quiet := func(i int) bool {
		return levels[i] < 500 && (i == 0 || levels[i-1] < 500) && (i+1 == len(levels) || levels[i+1] < 500)
	}
	var residual float64
	var n int
	halves := make([]struct {
		power float64
		n     int
	}, len(levels)/25+1)
	for i := range levels {
		if !quiet(i) {
			continue
		}
		p := meanSquare(heard[i*960 : (i+1)*960])
		halves[i/25].power += p
		halves[i/25].n++
		if i*960 >= from {
			residual += p
			n++
		}
	}
	residual /= float64(max(n, 1))
	// ERLE in each half second from 2.5 s on, and the beep's loudest
	// window in each second against the synthetic microphone's 30 % of
	// full scale: their medians. A microphone that loses samples under
	// load (Jumps) costs the filter a second to converge again, which a
	// mean over 3.5 s would count against it.
	var curve []string
	var halfERLE []float64
	for k, h := range halves {
		if h.n == 0 {
			continue
		}
		e := 10 * math.Log10(raw/max(h.power/float64(h.n), 1e-3))
		curve = append(curve, fmt.Sprintf("%.0f", e))
		if k*25*960 >= from {
			halfERLE = append(halfERLE, e)
		}
	}
	mean := 10 * math.Log10(raw/max(residual, 1e-3))
	var beeps []float64
	for s := from / 960; s+50 <= len(levels); s += 50 {
		beeps = append(beeps, slices.Max(levels[s:s+50]))
	}
	erle, beep := median(halfERLE), median(beeps)
	t.Logf("ERLE in each half second: %s dB", strings.Join(curve, " "))
	st := d.mic.aec.Stats()
	t.Logf("echo: %.1f dBFS through the loop, %.1f dBFS heard between beeps (%d windows): ERLE %.1f dB (median of half seconds; %.1f dB over all); the beep heard at %.0f of %.0f (%.1f dB) while the phone talks; canceller: %d blocks (%d jumps), %.1f dB in to out",
		10*math.Log10(raw/(32768*32768)), 10*math.Log10(max(residual, 1e-3)/(32768*32768)), n, erle, mean, beep, 0.3*32767, 20*math.Log10(0.3*32767/beep), st.Blocks, st.Jumps, 10*math.Log10(st.In/st.Out))
	if 10*math.Log10(raw/(32768*32768)) < -40 {
		t.Fatal("the speaker played almost nothing")
	}
	if st.Blocks < 100 || st.In/float64(st.Blocks*960) < raw/2 {
		t.Fatalf("the canceller heard %+v: no echo came back (%.0f expected a sample)", st, raw)
	}
	if att := 20 * math.Log10(0.3*32767/beep); att > 6 {
		t.Fatalf("the camera's beep reached the phone %.1f dB down while the phone talked", att)
	}
	// The synthetic microphone delivers its blocks late on a loaded
	// machine rather than skipping them (up to 2 s behind), so the
	// ERLE is judged however loaded the machine is.
	if erle < 25 {
		t.Fatalf("ERLE %.1f dB, want at least 25", erle)
	}
}

// TestFullDuplexNeverLeavesTheEcho: calls.duplex: full runs the echo
// canceller, or, in a build without one (no cgo), the half-duplex gate
// with a warning in the log; never nothing.
func TestFullDuplexNeverLeavesTheEcho(t *testing.T) {
	var log testenv.Buffer
	m := newMicChain(Config{Calls: CallsConfig{Duplex: "full"}}, slog.New(slog.NewTextHandler(&log, nil)))
	_, err := talk.NewCanceller(talk.CancellerOptions{})
	switch {
	case err == nil:
		if m.aec == nil || m.gate != nil {
			t.Fatalf("full duplex with a canceller: %+v", m)
		}
	case errors.Is(err, talk.ErrNoEchoCanceller):
		if m.gate == nil || !strings.Contains(log.String(), "calls are half duplex") {
			t.Fatalf("full duplex without a canceller: %+v, log %q", m, log.String())
		}
	default:
		t.Fatal(err)
	}
	if m.fn(Config{}) == nil {
		t.Fatal("the microphone goes through nothing")
	}
}

// TestCallWithoutCameraAudioPlaysG711: a camera with no microphone (the
// passthrough source, what CGO-free builds stream) answers a phone that
// offers PCMU alone with its audio recvonly, and the phone's G.711 comes
// out of the speaker. Before, 422: there was no G.711 to send it.
func TestCallWithoutCameraAudioPlaysG711(t *testing.T) {
	d := running(t) // passthrough: no audio
	if d.hub.Info().Audio {
		t.Fatal("the passthrough source has audio")
	}
	ownerToken := owner(t, d)
	c := ring(t, d, ownerToken)
	p := newPhoneWithoutOpus(t)
	code, answer := p.answer(t, d, c.ID, ownerToken, p.offer(t))
	if code != http.StatusCreated {
		t.Fatalf("answer: %d %s", code, answer)
	}
	_, audio, _ := strings.Cut(answer, "m=audio")
	if !strings.Contains(audio, "a=recvonly") || !strings.Contains(audio, "PCMU/8000") {
		t.Fatalf("the answer's audio is not PCMU recvonly:\n%s", answer)
	}
	select {
	case <-p.connected:
	case <-time.After(10 * time.Second):
		t.Fatal("the phone did not connect")
	}
	p.talkTone(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.board.sim.Speaker.Wait(ctx, 24000); err != nil {
		t.Fatalf("the speaker played nothing: %v", err)
	}
	pcm, _ := d.board.sim.Speaker.Played()
	tone, rms := loudest(pcm, 4800)
	if g := tonetest.Share(tone, 1000); rms < 1000 || g < 0.5 {
		t.Fatalf("the speaker: RMS %.0f, %.2f of its power at 1 kHz", rms, g)
	}
	if got, _ := d.calls.m.Get(c.ID); got.State != calls.Answered {
		t.Fatalf("the call: %+v", got)
	}
}
