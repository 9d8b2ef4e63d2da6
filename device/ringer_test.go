package device

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/camd-project/camd/board"
	"github.com/camd-project/camd/media/tonetest"
)

// TestRingerChimeToneAndLED: while a call rings the chime is struck once
// (held for its pulse), the status LED blinks rapidly, and the speaker
// plays the ring-back tone's cadence (1 s of 425 Hz, 4 s of silence);
// once the ringing stops, the tone stops at once.
func TestRingerChimeToneAndLED(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := boardDaemon(t)
		runBoard(t, d)
		s := d.board.sim
		d.board.ringing(true)
		if !s.Chime() {
			t.Fatal("the chime is not struck")
		}
		if p := d.board.status.Pattern(); p[0] != 100*time.Millisecond {
			t.Fatalf("the LED shows %v while ringing", p)
		}
		time.Sleep(board.DefaultChimePulse)
		synctest.Wait()
		if s.Chime() {
			t.Fatal("the chime is still held after its pulse")
		}
		time.Sleep(5*time.Second - board.DefaultChimePulse)
		synctest.Wait()
		pcm, _ := s.Speaker.Played()
		if len(pcm) < 5*board.SpeakerRate-960 || len(pcm) > 5*board.SpeakerRate+960 {
			t.Fatalf("%d samples in 5 s", len(pcm))
		}
		if g := tonetest.Share(pcm[:board.SpeakerRate], ringHz); g < 0.9 {
			t.Fatalf("the first second holds %.2f of its power at %d Hz", g, ringHz)
		}
		for _, x := range pcm[board.SpeakerRate+10 : 5*board.SpeakerRate-10] {
			if x != 0 {
				t.Fatal("the tone sounds in its 4 s pause")
			}
		}
		d.board.ringing(false)
		s.Speaker.Reset()
		if p := d.board.status.Pattern(); p[0] == 100*time.Millisecond {
			t.Fatal("the LED still shows ringing")
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if pcm, _ := s.Speaker.Played(); len(pcm) != 0 {
			t.Fatalf("%d samples after the ringing stopped", len(pcm))
		}
	})
}
