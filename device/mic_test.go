package device

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/camd-project/camd/board"
)

// playoutSpeaker is a board speaker that reports its playout: each
// sample is 7.
type playoutSpeaker struct{}

func (playoutSpeaker) Play([]int16) error { return nil }
func (playoutSpeaker) Playout(dst []int16, _ time.Time) bool {
	for i := range dst {
		dst[i] = 7
	}
	return true
}

// TestMicChainTakesTheSpeakersPlayout: the echo canceller's far end
// comes from whichever board speaker reports its playout (as ALSA's
// does), also through the speaker file; one that does not report it
// leaves the canceller to its own clock.
func TestMicChainTakesTheSpeakersPlayout(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "speaker.pcm"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, tc := range []struct {
		name string
		sp   board.Speaker
		want bool
	}{
		{"playout speaker", playoutSpeaker{}, true},
		{"through the speaker file", fileSpeaker{playoutSpeaker{}, f}, true},
		{"plain speaker", player(nil), false},
		{"plain speaker through the file", fileSpeaker{plainSpeaker{}, f}, false},
	} {
		m := &micChain{}
		m.useSpeaker(tc.sp)
		dst := make([]int16, 4)
		if got := m.playout(dst, time.Now()); got != tc.want || (got && dst[3] != 7) {
			t.Errorf("%s: playout %v %v, want %v", tc.name, got, dst, tc.want)
		}
	}
}

type plainSpeaker struct{}

func (plainSpeaker) Play([]int16) error { return nil }
