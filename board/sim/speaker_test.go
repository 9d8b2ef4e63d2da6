package sim

import (
	"context"
	"testing"
	"time"

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

// TestSpeakerEchoesIntoMicrophone: with Echo, what the speaker plays
// comes back into the microphone Delay later and Loss dB quieter; a
// speaker that went idle starts its line again.
func TestSpeakerEchoesIntoMicrophone(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := t0
	s := NewSpeaker()
	s.now = func() time.Time { return now }
	s.echo = &Echo{Delay: 40 * time.Millisecond, Loss: 20}
	tone := make([]int16, 960) // 20 ms
	for i := range tone {
		tone[i] = 10000
	}
	s.Play(tone)
	s.Play(tone) // queued after the first: plays 20 to 40 ms
	mic := func(at time.Duration) []int16 {
		pcm := make([]int16, 960)
		s.Microphone(pcm, t0.Add(at))
		return pcm
	}
	if pcm := mic(0); pcm[0] != 0 || pcm[959] != 0 {
		t.Fatalf("echo before its delay: %d %d", pcm[0], pcm[959])
	}
	for _, at := range []time.Duration{40 * time.Millisecond, 60 * time.Millisecond} {
		if pcm := mic(at); pcm[0] != 1000 || pcm[959] != 1000 {
			t.Fatalf("echo at %v: %d %d, want 1000 (20 dB under 10000)", at, pcm[0], pcm[959])
		}
	}
	if pcm := mic(30 * time.Millisecond); pcm[0] != 0 || pcm[479] != 0 || pcm[480] != 1000 {
		t.Fatalf("echo starting mid-block: %d %d %d", pcm[0], pcm[479], pcm[480])
	}
	if pcm := mic(80 * time.Millisecond); pcm[0] != 0 {
		t.Fatalf("echo after the sound: %d", pcm[0])
	}
	now = t0.Add(time.Hour) // idle: the line starts again
	s.Play(tone)
	if pcm := mic(time.Hour + 40*time.Millisecond); pcm[0] != 1000 {
		t.Fatalf("echo after an idle hour: %d", pcm[0])
	}
	if pcm := mic(60 * time.Millisecond); pcm[0] != 0 {
		t.Fatalf("line kept what played before the idle hour: %d", pcm[0])
	}
	quiet := NewSpeaker()
	quiet.Play(tone)
	if pcm := make([]int16, 960); func() bool { quiet.Microphone(pcm, time.Now()); return pcm[0] != 0 }() {
		t.Fatal("a speaker without Echo echoed")
	}
}
