package talk

import (
	"math"
	"sync"
	"time"
)

// GateOptions configure a Gate. The zero value of each field means its
// default.
type GateOptions struct {
	// Attenuation is how much the microphone is turned down while the
	// phone's voice plays, in dB (default 30).
	Attenuation float64
	// Threshold is the level of the phone's audio, RMS over a packet in
	// dB below full scale, above which it is voice (default -45).
	Threshold float64
	// Hang is how long the microphone stays down after the phone's voice
	// stops playing, which covers the echo's way back from the speaker
	// and the pauses between words (default 200 ms).
	Hang time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Gate is a call's half-duplex echo suppressor: a voice activity
// detector on what the speaker plays (the energy of each packet of the
// phone's audio) holds the camera's microphone down while the phone
// talks and for a hang time after, so that the phone does not hear its
// own voice back from the speaker. Its methods are safe for concurrent
// use.
type Gate struct {
	opts  GateOptions
	floor float64 // the microphone's gain while the phone talks

	mu    sync.Mutex
	until time.Time // the phone's voice plays until then, hang included
	gain  float64   // the microphone's gain at the end of the last block
}

// NewGate returns a gate with the microphone open.
func NewGate(opts GateOptions) *Gate {
	if opts.Attenuation <= 0 {
		opts.Attenuation = 30
	}
	if opts.Threshold == 0 {
		opts.Threshold = -45
	}
	if opts.Hang <= 0 {
		opts.Hang = 200 * time.Millisecond
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Gate{opts: opts, floor: math.Pow(10, -opts.Attenuation/20), gain: 1}
}

// Speaker returns sp with the gate listening to what it plays.
func (g *Gate) Speaker(sp speaker) speaker { return heard{g.Far, sp} }

// Far takes 48 kHz PCM about to play on the speaker: when it is voice,
// the microphone is held down until it has played, and Hang after.
func (g *Gate) Far(pcm []int16) {
	if len(pcm) == 0 || level(pcm) < g.opts.Threshold {
		return
	}
	now := g.opts.Now()
	end := now.Add(time.Duration(len(pcm))*time.Second/48000 + g.opts.Hang)
	g.mu.Lock()
	defer g.mu.Unlock()
	// Packets queue on the speaker: this one plays after those before it.
	if g.until.After(now) {
		end = g.until.Add(time.Duration(len(pcm)) * time.Second / 48000)
		if most := now.Add(time.Second + g.opts.Hang); end.After(most) {
			end = most // a speaker queues no more
		}
	}
	g.until = end
}

// Talking reports whether the phone's voice holds the microphone down
// at t.
func (g *Gate) Talking(t time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return t.Before(g.until)
}

// Mic turns a block of the microphone captured at captured down while
// the phone talks (a media.MicFunc). The gain ramps across the block
// rather than jumping, so the switch does not click.
func (g *Gate) Mic(pcm []int16, captured time.Time) {
	g.mu.Lock()
	from := g.gain
	to := 1.0
	if captured.Before(g.until) {
		to = g.floor
	}
	g.gain = to
	g.mu.Unlock()
	if from == 1 && to == 1 {
		return
	}
	n := float64(len(pcm))
	for i, s := range pcm {
		k := from + (to-from)*float64(i+1)/n
		pcm[i] = int16(math.Round(float64(s) * k))
	}
}

// level is pcm's RMS in dB below full scale.
func level(pcm []int16) float64 {
	e := energy(pcm)
	if e == 0 {
		return math.Inf(-1)
	}
	return 10 * math.Log10(e/float64(len(pcm))/(32768*32768))
}
