package talk

import (
	"errors"
	"slices"
	"sync"
	"time"
)

// ErrNoEchoCanceller is a build without an acoustic echo canceller
// (speexdsp needs cgo: docs/calls.md, Echo).
var ErrNoEchoCanceller = errors.New("talk: no acoustic echo canceller in this build (speexdsp through cgo)")

// CancellerOptions configure a Canceller. The zero value of each field
// means its default.
type CancellerOptions struct {
	// Tail is the longest echo path the adaptive filter models: the
	// error in the speaker's playout time, the room's delay and its
	// reverberation (default 100 ms: docs/calls.md).
	Tail time.Duration
	// NoSuppress turns off the residual echo suppressor (speexdsp's
	// preprocessor with the echo state) that follows the adaptive
	// filter; only tests of the filter alone want that.
	NoSuppress bool
	// Playout, when set, copies into dst what the speaker played from
	// at on, as a speaker driver that knows its playout tells it
	// (board.PlayoutSpeaker: the ALSA and simulated speakers); it
	// returns false when it does not know. Without it, the canceller places what it is given to play
	// on its own clock, after what the speaker still has queued, as the
	// speaker would; the two differ by a sample now and then where the
	// speaker ran dry, and the filter adapts again (docs/calls.md).
	Playout func(dst []int16, at time.Time) bool
	// Now is the clock the speaker plays on (default time.Now).
	Now func() time.Time
}

// Rate is the sample rate a Canceller works at: the microphone's and
// the speaker's (48 kHz).
const Rate = 48000

// aecFrame is the canceller's frame: a 20 ms block of the microphone
// (speexdsp's filter converged further and cost less with it than with
// 10 ms frames: docs/calls.md).
const aecFrame = Rate / 50

// farLine is how much of what the speaker played a Canceller keeps for
// a microphone that falls behind.
const farLine = 2 * time.Second

// engine cancels the echo of far in near, one aecFrame at a time, into
// out (speexdsp's echo canceller and preprocessor); silence feeds the
// filter n frames of silence at both ends, which clears the far end's
// history without adapting.
type engine interface {
	cancel(near, far, out []int16)
	silence(n int)
}

// Canceller is a full-duplex call's acoustic echo canceller: it keeps
// what the speaker plays on the speaker's clock (the far end, after
// what the speaker still has queued, as the speaker plays it) and takes
// out of each block of the microphone the echo of what played while it
// was captured, and before it up to Tail: an adaptive filter (speexdsp's
// multidelay block frequency domain filter) and a residual echo
// suppressor. Its methods are safe for concurrent use.
type Canceller struct {
	opts CancellerOptions

	mu        sync.Mutex
	eng       engine
	line      []int16   // what the speaker played, for the microphone
	lineStart time.Time // when line[0] played
	farEnd    time.Time // when the last sample given to the speaker plays out
	next      time.Time // when the block after the last one was captured
	far, out  []int16
	stats     CancellerStats
}

// CancellerStats count what a Canceller did to the blocks of the
// microphone captured while the speaker played or its echo could come
// back (the others it leaves as they are): their energy (the sum of the
// squares of their samples) before and after. Without a near end,
// 10·log10(In/Out) is the echo return loss enhancement.
type CancellerStats struct {
	Blocks  uint64
	In, Out float64
	// Jumps counts the blocks that did not follow the one before them
	// that the filter took (the microphone lost samples, or the
	// canceller was idle): the filter takes silence for the time
	// between, up to Tail, so that it does not adapt to a far end whose
	// echo came back unheard.
	Jumps uint64
}

// NewCanceller returns an echo canceller, or ErrNoEchoCanceller in a
// build without one.
func NewCanceller(opts CancellerOptions) (*Canceller, error) {
	if opts.Tail <= 0 {
		opts.Tail = 100 * time.Millisecond
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	tail := max(int(opts.Tail*Rate/time.Second), aecFrame)
	eng, err := newEngine(aecFrame, tail, !opts.NoSuppress)
	if err != nil {
		return nil, err
	}
	return &Canceller{opts: opts, eng: eng}, nil
}

// Speaker returns sp with the canceller listening to what it plays.
func (c *Canceller) Speaker(sp speaker) speaker { return heard{c.Far, sp} }

// Far takes 48 kHz PCM about to play on the speaker: it plays after
// what the speaker still has queued, or at once when the speaker is
// idle.
func (c *Canceller) Far(pcm []int16) {
	now := c.opts.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	end := c.lineStart.Add(samplesDur(len(c.line)))
	switch gap := now.Sub(end); {
	case len(c.line) == 0 || gap > farLine:
		c.line, c.lineStart = c.line[:0], now
	case gap > 0:
		c.line = append(c.line, make([]int16, durSamples(gap))...) // the speaker ran dry
	}
	c.line = append(c.line, pcm...)
	c.farEnd = c.lineStart.Add(samplesDur(len(c.line)))
	if over := len(c.line) - durSamples(farLine); over > 0 {
		c.drop(over)
	}
}

// drop forgets the first n samples of the line.
func (c *Canceller) drop(n int) {
	c.line = slices.Delete(c.line, 0, n)
	c.lineStart = c.lineStart.Add(samplesDur(n))
}

// Mic takes the echo out of a block of the microphone whose first
// sample was captured at captured (a media.MicFunc): the far end is what
// the speaker played from then on, in the block's frames. A block that
// is not whole frames keeps its last part as it is. A block captured
// more than Tail after the speaker last played (no call, or the phone
// is quiet) is left as it is: the microphone sounds as in half duplex
// outside calls, and the canceller costs nothing then.
func (c *Canceller) Mic(pcm []int16, captured time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.farEnd.IsZero() || captured.After(c.farEnd.Add(c.opts.Tail)) {
		return
	}
	n := len(pcm) / aecFrame * aecFrame
	c.far = slices.Grow(c.far[:0], n)[:n]
	clear(c.far)
	if c.opts.Playout != nil && c.opts.Playout(c.far, captured) {
		c.line = c.line[:0] // the speaker's own word
	} else if since := captured.Sub(c.lineStart); len(c.line) > 0 && since < farLine {
		first := durSamples(since)
		for i := range c.far {
			if j := first + i; j >= 0 && j < len(c.line) {
				c.far[i] = c.line[j]
			}
		}
		// What played before this block was heard by the filter.
		c.drop(min(max(first+n, 0), len(c.line)))
	}
	c.out = slices.Grow(c.out[:0], n)[:n]
	for i := 0; i < n; i += aecFrame {
		c.eng.cancel(pcm[i:i+aecFrame], c.far[i:i+aecFrame], c.out[i:i+aecFrame])
	}
	if !c.next.IsZero() && !captured.Equal(c.next) {
		c.stats.Jumps++
		if gap := captured.Sub(c.next); gap > 0 {
			c.eng.silence(min(durSamples(gap), durSamples(c.opts.Tail)+aecFrame-1) / aecFrame)
		}
	}
	c.next = captured.Add(samplesDur(len(pcm)))
	c.stats.Blocks++
	c.stats.In += energy(pcm[:n])
	c.stats.Out += energy(c.out)
	copy(pcm, c.out)
}

// Stats returns the canceller's counters.
func (c *Canceller) Stats() CancellerStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

func energy(pcm []int16) float64 {
	var e float64
	for _, s := range pcm {
		e += float64(s) * float64(s)
	}
	return e
}

func samplesDur(n int) time.Duration { return time.Duration(n) * time.Second / Rate }

func durSamples(d time.Duration) int { return int(d * Rate / time.Second) }
