package device

import (
	"context"
	"math"
	"time"

	"github.com/camd-project/camd/board"
)

// The ring-back tone the visitor hears while a call rings: 425 Hz (the
// ETSI ringing tone), 1 s on, 4 s off, at a third of full scale times the
// speaker volume.
const (
	ringHz    = 425
	ringOn    = time.Second
	ringCycle = 5 * time.Second
	ringLevel = 10000
	ringBlock = 20 * time.Millisecond
)

// ringRequest turns the ringing on or off; done is closed once it has.
type ringRequest struct {
	on   bool
	done chan struct{}
}

// ringing shows a ringing call, or stops showing it: the status LED, the
// chime struck once, the ring-back tone on the speaker. It returns once
// done (the tone has stopped: the speaker is the phone's from then on),
// or at once when the board is not running.
func (bs *boardState) ringing(on bool) {
	if bs.status != nil {
		bs.status.Set(board.Ringing, on)
	}
	if !bs.ringerOn.Load() {
		return // not running (yet, or any more)
	}
	req := ringRequest{on: on, done: make(chan struct{})}
	select {
	case bs.rings <- req:
		<-req.done
	case <-bs.ringerDone:
	}
}

// runRinger plays the chime's pulse and the ring-back tone until ctx
// ends.
func (bs *boardState) runRinger(ctx context.Context) {
	b := bs.b
	var (
		tick   *time.Ticker
		ticks  <-chan time.Time
		pulse  <-chan time.Time
		sample int // of the tone's cadence
	)
	stopTone := func() {
		if tick != nil {
			tick.Stop()
			tick, ticks = nil, nil
		}
	}
	defer stopTone()
	defer func() {
		if pulse != nil {
			b.Chime.Set(false)
		}
	}()
	play := func() {
		n := int(ringBlock * board.SpeakerRate / time.Second)
		pcm := make([]int16, n)
		vol := bs.volume()
		for i := range pcm {
			at := time.Duration(sample+i) * time.Second / board.SpeakerRate % ringCycle
			if at < ringOn {
				pcm[i] = int16(ringLevel * vol * math.Sin(2*math.Pi*ringHz*float64(sample+i)/board.SpeakerRate))
			}
		}
		sample += n
		b.Speaker.Play(pcm)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case req := <-bs.rings:
			if req.on && b.Chime != nil && pulse == nil {
				b.Chime.Set(true)
				pulse = time.After(b.ChimePulse)
			}
			if req.on && b.Speaker != nil && tick == nil {
				sample = 0
				play()
				tick = time.NewTicker(ringBlock)
				ticks = tick.C
			}
			if !req.on {
				stopTone()
			}
			close(req.done)
		case <-pulse:
			b.Chime.Set(false)
			pulse = nil
		case <-ticks:
			play()
		}
	}
}
