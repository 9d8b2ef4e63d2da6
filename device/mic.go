package device

import (
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/camd-project/camd/board"
	"github.com/camd-project/camd/board/sim"
	"github.com/camd-project/camd/media"
	"github.com/camd-project/camd/media/talk"
)

// micChain is what the camera's microphone goes through before it is
// encoded (docs/calls.md, Echo): the simulated board's loop from the
// speaker (board: sim with sim.echo), then the call's echo handling:
// the half-duplex gate (calls.duplex: half) or the acoustic echo
// canceller (full), which every listener hears through: live viewers
// hear the camera's microphone, not the phone's echo.
type micChain struct {
	gate *talk.Gate      // half duplex, or full in a build without an echo canceller
	aec  *talk.Canceller // full duplex
	room atomic.Pointer[sim.Speaker]
	// out is the board's speaker when it knows what it played when
	// (board.PlayoutSpeaker: ALSA, or the simulated board's).
	out atomic.Pointer[board.PlayoutSpeaker]
}

// player is what a call's phone audio plays on (board.Speaker).
type player interface {
	Play(pcm []int16) error
}

func newMicChain(cfg Config, log *slog.Logger) *micChain {
	m := &micChain{}
	if cfg.Calls.Duplex == "full" {
		// The board's speaker may know what it played when
		// (useSpeaker).
		aec, err := talk.NewCanceller(talk.CancellerOptions{Playout: m.playout})
		if err == nil {
			m.aec = aec
			return m
		}
		if !errors.Is(err, talk.ErrNoEchoCanceller) {
			log.Error("calls: the echo canceller did not start: half duplex", "err", err)
		} else {
			log.Warn("calls: full duplex needs an acoustic echo canceller, which this build lacks (speexdsp through cgo): calls are half duplex")
		}
	}
	m.gate = talk.NewGate(talk.GateOptions{})
	return m
}

// speaker returns sp with the call's echo handling listening to what it
// plays.
func (m *micChain) speaker(sp player) player {
	switch {
	case m.aec != nil:
		return m.aec.Speaker(sp)
	case m.gate != nil:
		return m.gate.Speaker(sp)
	}
	return sp
}

// useSpeaker has the echo canceller take its far end from sp's own
// playout when sp reports it (board.PlayoutSpeaker).
func (m *micChain) useSpeaker(sp board.Speaker) {
	if ps, ok := sp.(board.PlayoutSpeaker); ok {
		m.out.Store(&ps)
	}
}

// playout is what the board's speaker played from at on (false: it
// does not say, or does not know).
func (m *micChain) playout(dst []int16, at time.Time) bool {
	out := m.out.Load()
	return out != nil && (*out).Playout(dst, at)
}

// echo is the simulated board's loop the configuration asks for (nil:
// none).
func simEcho(cfg Config) *sim.Echo {
	if cfg.Board != "sim" || !cfg.Sim.Echo {
		return nil
	}
	return &sim.Echo{Delay: cfg.Sim.EchoDelay, Loss: cfg.Sim.EchoLoss}
}

// fn is the chain as the sources take it; nil when it would do nothing.
func (m *micChain) fn(cfg Config) media.MicFunc {
	if m.gate == nil && m.aec == nil && simEcho(cfg) == nil {
		return nil
	}
	return m.mic
}

func (m *micChain) mic(pcm []int16, captured time.Time) {
	if room := m.room.Load(); room != nil {
		room.Microphone(pcm, captured)
	}
	switch {
	case m.aec != nil:
		m.aec.Mic(pcm, captured)
	case m.gate != nil:
		m.gate.Mic(pcm, captured)
	}
}
