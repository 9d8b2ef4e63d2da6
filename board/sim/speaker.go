package sim

import (
	"context"
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
}

// KeepSeconds is how much of what was played a Speaker keeps.
const KeepSeconds = 60

var _ board.Speaker = (*Speaker)(nil)

// NewSpeaker returns a speaker that has played nothing.
func NewSpeaker() *Speaker { return &Speaker{changed: make(chan struct{})} }

// Play keeps pcm.
func (s *Speaker) Play(pcm []int16) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pcm) == 0 && len(pcm) > 0 {
		s.first = time.Now()
	}
	s.pcm = append(s.pcm, pcm...)
	s.total += len(pcm)
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
