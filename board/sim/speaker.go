package sim

import (
	"context"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/camd-project/camd/board"
)

// Speaker is a simulated speaker: it keeps what was played, for tests to
// listen to: the last KeepSeconds of it (a daemon run on the simulated
// board talks for as long as it likes).
type Speaker struct {
	mu      sync.Mutex
	pcm     []int16
	total   int       // samples played in all
	first   time.Time // when the first sample was played
	changed chan struct{}

	// The echo line: what was played, on the clock, for the microphone.
	echo *Echo
	line board.PlayoutLine
	now  func() time.Time
	mic  []int16 // Microphone's scratch
}

// Echo is the simulated room between the speaker and the microphone:
// what the speaker plays comes back into the microphone Delay later,
// Loss dB quieter.
type Echo struct {
	// Delay is the echo path's delay (default 30 ms).
	Delay time.Duration
	// Loss is the echo path's attenuation in dB (0: as loud as played).
	Loss float64
}

// KeepSeconds is how much of what was played a Speaker keeps.
const KeepSeconds = 60

var _ board.PlayoutSpeaker = (*Speaker)(nil)

// NewSpeaker returns a speaker that has played nothing.
func NewSpeaker() *Speaker { return &Speaker{changed: make(chan struct{}), now: time.Now} }

// Play keeps pcm.
func (s *Speaker) Play(pcm []int16) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pcm) == 0 && len(pcm) > 0 {
		s.first = time.Now()
	}
	s.pcm = append(s.pcm, pcm...)
	s.total += len(pcm)
	if s.echo != nil {
		// A speaker plays what it is given after what it still has
		// queued, or at once when it is idle.
		s.line.Queued(pcm, s.now())
	}
	if over := len(s.pcm) - KeepSeconds*board.SpeakerRate; over > 0 {
		s.pcm = slices.Delete(s.pcm, 0, over)
	}
	close(s.changed)
	s.changed = make(chan struct{})
	return nil
}

// Played returns a copy of the samples kept (the last KeepSeconds of
// what was played), and when the first sample was played.
func (s *Speaker) Played() ([]int16, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.pcm), s.first
}

// Reset forgets what was played.
func (s *Speaker) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pcm, s.total, s.first = nil, 0, time.Time{}
	s.line.Reset()
}

// Wait returns once at least n samples have been played in all (since
// the last Reset), or ctx's error.
func (s *Speaker) Wait(ctx context.Context, n int) error {
	for {
		s.mu.Lock()
		have, ch := s.total, s.changed
		s.mu.Unlock()
		if have >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// Microphone adds to pcm, a block of the microphone whose first sample
// was captured at captured, the echo of what the speaker played
// Echo.Delay before (a media.MicFunc). Without Echo it does nothing.
func (s *Speaker) Microphone(pcm []int16, captured time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.echo == nil {
		return
	}
	delay := s.echo.Delay
	if delay <= 0 {
		delay = 30 * time.Millisecond
	}
	s.mic = slices.Grow(s.mic[:0], len(pcm))[:len(pcm)]
	if !s.line.Playout(s.mic, captured.Add(-delay)) {
		return
	}
	gain := math.Pow(10, -s.echo.Loss/20)
	for i, e := range s.mic {
		v := float64(pcm[i]) + gain*float64(e)
		pcm[i] = int16(max(-32768, min(32767, v)))
	}
}

// Playout copies into dst what the speaker played from at on, silence
// where it played nothing (or no longer keeps it): the far end of a
// call's echo canceller, as a speaker driver that knows its playout
// gives it. It knows only with Echo; without, it returns false.
func (s *Speaker) Playout(dst []int16, at time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.echo == nil {
		return false
	}
	s.line.Playout(dst, at) // false: it played nothing then (dst is silent)
	return true
}
