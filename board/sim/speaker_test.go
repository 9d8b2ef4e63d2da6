package sim

import (
	"context"
	"testing"

	"github.com/camd-project/camd/board"
)

// TestSpeakerKeepsTheLastMinute: what a long run plays is bounded; Wait
// counts everything played.
func TestSpeakerKeepsTheLastMinute(t *testing.T) {
	s := NewSpeaker()
	block := make([]int16, board.SpeakerRate)
	for i := range KeepSeconds + 5 {
		block[0] = int16(i)
		s.Play(block)
	}
	pcm, first := s.Played()
	if len(pcm) != KeepSeconds*board.SpeakerRate || pcm[0] != 5 || first.IsZero() {
		t.Fatalf("kept %d samples starting with second %d", len(pcm), pcm[0])
	}
	if err := s.Wait(context.Background(), (KeepSeconds+5)*board.SpeakerRate); err != nil {
		t.Fatal(err)
	}
	s.Reset()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Wait(ctx, 1); err == nil {
		t.Fatal("Wait after Reset returned without a sample")
	}
}
