package device

import (
	"sync/atomic"
	"time"

	"github.com/camd-project/camd/board/sim"
	"github.com/camd-project/camd/media"
	"github.com/camd-project/camd/media/talk"
)

// micChain is what the camera's microphone goes through before it is
// encoded (docs/calls.md, Echo): the simulated board's loop from the
// speaker (board: sim with sim.echo), then the call's half-duplex gate
// (calls.duplex: half), which every listener hears through: live
// viewers hear the camera's microphone, not the phone's echo.
type micChain struct {
	gate *talk.Gate // nil: full duplex
	room atomic.Pointer[sim.Speaker]
}

func newMicChain(cfg Config) *micChain {
	m := &micChain{}
	if cfg.Calls.Duplex == "half" {
		m.gate = talk.NewGate(talk.GateOptions{})
	}
	return m
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
	if m.gate == nil && simEcho(cfg) == nil {
		return nil
	}
	return m.mic
}

func (m *micChain) mic(pcm []int16, captured time.Time) {
	if room := m.room.Load(); room != nil {
		room.Microphone(pcm, captured)
	}
	if m.gate != nil {
		m.gate.Mic(pcm, captured)
	}
}
