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
	echo      *Echo
	line      []int16
	lineStart time.Time // when line[0] played
	now       func() time.Time
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

// echoLine is how much of what was played the echo line keeps.
const echoLine = 2 * time.Second

// KeepSeconds is how much of what was played a Speaker keeps.
const KeepSeconds = 60

var _ board.Speaker = (*Speaker)(nil)

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
		s.toLine(pcm)
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
	s.line = nil
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

// toLine puts pcm on the echo line: a speaker plays what it is given
// after what it still has queued, or at once when it is idle.
func (s *Speaker) toLine(pcm []int16) {
	now := s.now()
	end := s.lineStart.Add(samplesDur(len(s.line)))
	switch gap := now.Sub(end); {
	case len(s.line) == 0 || gap > echoLine:
		s.line, s.lineStart = s.line[:0], now
	case gap > 0:
		s.line = append(s.line, make([]int16, durSamples(gap))...) // silence
	}
	s.line = append(s.line, pcm...)
	if over := len(s.line) - durSamples(echoLine); over > 0 {
		s.line = slices.Delete(s.line, 0, over)
		s.lineStart = s.lineStart.Add(samplesDur(over))
	}
}

// Microphone adds to pcm, a block of the microphone whose first sample
// was captured at captured, the echo of what the speaker played
// Echo.Delay before (a media.MicFunc). Without Echo it does nothing.
func (s *Speaker) Microphone(pcm []int16, captured time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.echo == nil || len(s.line) == 0 {
		return
	}
	delay := s.echo.Delay
	if delay <= 0 {
		delay = 30 * time.Millisecond
	}
	gain := math.Pow(10, -s.echo.Loss/20)
	first := s.index(captured.Add(-delay))
	for i := range pcm {
		j := first + i
		if j < 0 || j >= len(s.line) {
			continue
		}
		v := float64(pcm[i]) + gain*float64(s.line[j])
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
	clear(dst)
	if len(s.line) == 0 {
		return true
	}
	first := s.index(at)
	for i := range dst {
		if j := first + i; j >= 0 && j < len(s.line) {
			dst[i] = s.line[j]
		}
	}
	return true
}

// index is the place on the echo line of the sample played at t.
func (s *Speaker) index(t time.Time) int {
	return int(math.Round(t.Sub(s.lineStart).Seconds() * board.SpeakerRate))
}

func samplesDur(n int) time.Duration {
	return time.Duration(n) * time.Second / board.SpeakerRate
}

func durSamples(d time.Duration) int { return int(d * board.SpeakerRate / time.Second) }
