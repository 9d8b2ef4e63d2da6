package sim

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/camd-project/camd/board"
)

// Speaker is a simulated speaker: it keeps every sample played, and when
// each block arrived, for tests to listen to.
type Speaker struct {
	mu      sync.Mutex
	pcm     []int16
	first   time.Time // when the first sample was played
	changed chan struct{}
}

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
	close(s.changed)
	s.changed = make(chan struct{})
	return nil
}

// Played returns a copy of every sample played so far, and when the
// first was.
func (s *Speaker) Played() ([]int16, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.pcm), s.first
}

// Reset forgets what was played.
func (s *Speaker) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pcm, s.first = nil, time.Time{}
}

// Wait returns once at least n samples have been played in all, or
// ctx's error.
func (s *Speaker) Wait(ctx context.Context, n int) error {
	for {
		s.mu.Lock()
		have, ch := len(s.pcm), s.changed
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
