package device

import (
	"context"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/camd-project/camd/device/calls"
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

// echoLoss answers a call on a simulated board that loops its speaker
// into the microphone (30 ms, 6 dB), talks a 1 kHz tone for the duplex
// mode given, and returns how far under the tone sent its echo comes
// back to the phone, in dB, over the last 1.5 s of 2.5 s (the RMS of
// its level in 50 ms windows).
func echoLoss(t *testing.T, duplex string) float64 {
	t.Helper()
	d := running(t, syntheticSource, func(c *Config) {
		c.Calls.Duplex = duplex
		c.Sim = SimConfig{Echo: true, EchoDelay: 30 * time.Millisecond, EchoLoss: 6}
	})
	ownerToken := owner(t, d)
	c := ring(t, d, ownerToken)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const amp = 8000
	var sent int
	var heard []int16
	st, err := whep.View(ctx, "https://"+d.Addr().String()+"/api/v1/calls/"+c.ID+"/answer", whep.ViewOptions{
		HTTPClient: testClient(), Header: http.Header{"Authorization": {"Bearer " + ownerToken}},
		Talk: func(pcm []int16) {
			for i := range pcm {
				pcm[i] = int16(amp * math.Sin(2*math.Pi*1000*float64(sent+i)/48000))
			}
			sent += len(pcm)
		},
		PCM: func(pcm []int16) {
			heard = append(heard, pcm...)
			if len(heard) >= 5*48000/2 {
				cancel()
			}
		},
	})
	if len(heard) < 5*48000/2 {
		t.Fatalf("heard %d samples, %+v %v", len(heard), st, err)
	}
	// In 50 ms windows: the echo's phase jumps where the speaker ran
	// dry for a moment, which one long window would average away.
	var power float64
	var n int
	for w := heard[48000:]; len(w) >= 2400; w = w[2400:] {
		a := toneAmplitude(w[:2400], 1000)
		power += a * a
		n++
	}
	echo := math.Sqrt(power / float64(n))
	return 20 * math.Log10(amp/max(echo, 1e-3))
}

// TestHalfDuplexSuppressesEcho: with the simulated board's speaker
// looped into its microphone, a phone in a full-duplex call hears its
// own tone back; in half duplex (the default) the microphone is turned
// down while the phone talks, and the echo comes back at least 20 dB
// quieter.
func TestHalfDuplexSuppressesEcho(t *testing.T) {
	full := echoLoss(t, "full")
	half := echoLoss(t, "half")
	t.Logf("echo return loss: full duplex %.1f dB, half duplex %.1f dB: %.1f dB of suppression", full, half, half-full)
	if full > 15 {
		t.Fatalf("full duplex: the echo came back %.1f dB under the tone; the loop is 6 dB", full)
	}
	if half-full < 20 {
		t.Fatalf("half duplex suppressed the echo by %.1f dB, want at least 20", half-full)
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
	if g := goertzel(tone, 1000); rms < 1000 || g < 0.5 {
		t.Fatalf("the speaker: RMS %.0f, %.2f of its power at 1 kHz", rms, g)
	}
	if got, _ := d.calls.m.Get(c.ID); got.State != calls.Answered {
		t.Fatalf("the call: %+v", got)
	}
}
