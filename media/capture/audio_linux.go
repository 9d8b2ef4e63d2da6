//go:build linux && cgo && !camd_nocapture

package capture

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"sync/atomic"
	"time"

	"github.com/camd-project/camd/media"
	"github.com/camd-project/camd/media/encoder"
	"github.com/camd-project/camd/media/g711"
)

// Audio timing.
const (
	// blockDur is the length of one Opus packet (20 ms).
	blockDur = time.Second * encoder.OpusFrame / encoder.OpusSampleRate
	// maxAudioLead is how far the sample clock may run ahead of the wall
	// clock before samples are dropped. Late deliveries only make audio
	// look behind, so this reacts at once.
	maxAudioLead = 60 * time.Millisecond
	// maxAudioLag is how far it may fall behind before the PTS skip
	// ahead. A late delivery looks like lag too, so the check uses the
	// least lag seen over lagWindow.
	maxAudioLag = 100 * time.Millisecond
	lagWindow   = 2 * time.Second
	// micStall is how long the microphone may deliver nothing before Run
	// gives up on it.
	micStall = 2 * time.Second
)

// runAudio encodes and publishes what the microphone delivers until ctx
// ends or the microphone stops.
func (s *Source) runAudio(ctx context.Context, pub media.Publisher, m *mic, enc *encoder.Opus, start time.Time) error {
	st := &audioStage{enc: enc, pub: pub, start: start, mute: &s.mute, log: s.log, g711: s.opts.G711, mic: s.opts.Mic}
	defer func() {
		s.log.Debug("capture: audio stopped", "microphone", m.name, "packets", st.packets,
			"dropped_samples", st.dropped, "skipped", st.skipped)
	}()
	stall := time.NewTimer(micStall)
	defer stall.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-m.stopped:
			return fmt.Errorf("capture: microphone %s stopped", m.name)
		case <-stall.C:
			return fmt.Errorf("capture: microphone %s delivered nothing for %v", m.name, micStall)
		case c := <-m.chunks:
			stall.Reset(micStall)
			if err := st.write(c.samples, c.at); err != nil {
				return err
			}
		}
	}
}

// audioStage cuts 48 kHz mono PCM into 20 ms blocks, encodes them to Opus
// and publishes them. A packet's PTS comes from the sample count: the
// first sample gets the time since start at which it was captured, as
// the video's PTS, and every packet adds 20 ms. The microphone's clock is
// not the system's, though, and samples can be lost when the reader falls
// behind, so the stage keeps the sample clock within maxAudioLead ahead of
// and maxAudioLag behind the wall clock: it drops samples that run ahead
// and lets the PTS skip forward over a lag, leaving a gap in the stream.
// PTS only grow, by 20 ms or more. It is not safe for concurrent use.
type audioStage struct {
	enc   *encoder.Opus
	pub   media.Publisher
	start time.Time
	mute  *atomic.Bool
	log   *slog.Logger

	g711    bool          // also carry the sound as G.711 (Options.G711)
	mic     media.MicFunc // Options.Mic
	mulaw   g711.Encoder  // the same sound for RTSP clients without Opus
	pcm     []int16       // samples not yet encoded
	next    time.Duration // the PTS of pcm[0]
	started bool
	winEnd  time.Time     // end of the current lag window
	winMin  time.Duration // least lag seen in it

	packets uint64        // published
	dropped uint64        // samples dropped for running ahead
	skipped time.Duration // PTS skipped over lags
}

// write takes the samples that arrived at time at.
func (a *audioStage) write(samples []int16, at time.Time) error {
	if !a.started {
		a.started = true
		a.next = max(at.Sub(a.start)-samplesDur(len(samples)), 0)
		a.winEnd, a.winMin = at.Add(lagWindow), math.MaxInt64
	}
	a.pcm = append(a.pcm, samples...)

	// lag is how far the buffer's last sample, by the sample clock, is
	// behind its arrival.
	lag := at.Sub(a.start) - a.next - samplesDur(len(a.pcm))
	if lag < -maxAudioLead {
		n := len(a.pcm)
		if -lag < samplesDur(n) {
			n = durSamples(-lag)
		}
		a.pcm = a.pcm[:copy(a.pcm, a.pcm[n:])]
		a.dropped += uint64(n)
		lag += samplesDur(n)
		a.log.Debug("capture: audio ahead of the clock; samples dropped", "samples", n)
	}
	a.winMin = min(a.winMin, lag)
	if !at.Before(a.winEnd) {
		if a.winMin > maxAudioLag {
			a.next += a.winMin
			a.skipped += a.winMin
			a.log.Debug("capture: audio behind the clock; skipping ahead", "skip", a.winMin)
		}
		a.winEnd, a.winMin = at.Add(lagWindow), math.MaxInt64
	}

	n := 0
	for ; len(a.pcm)-n >= encoder.OpusFrame; n += encoder.OpusFrame {
		block := a.pcm[n : n+encoder.OpusFrame]
		if a.mute.Load() {
			clear(block)
		}
		if a.mic != nil {
			a.mic(block, a.start.Add(a.next))
		}
		pkt, err := a.enc.Encode(block)
		if err != nil {
			return fmt.Errorf("capture: %w", err)
		}
		f := &media.Frame{Kind: media.Audio, Data: pkt, PTS: a.next, Captured: a.start.Add(a.next)}
		if a.g711 {
			f.G711 = a.mulaw.Encode(block)
		}
		a.pub.Publish(f)
		a.packets++
		a.next += blockDur
	}
	a.pcm = a.pcm[:copy(a.pcm, a.pcm[n:])]
	return nil
}

// samplesDur is the duration of n samples at 48 kHz (n is at most a few
// seconds' worth).
func samplesDur(n int) time.Duration {
	return time.Duration(n) * time.Second / encoder.OpusSampleRate
}

// durSamples is the number of whole samples at 48 kHz in d (d >= 0).
func durSamples(d time.Duration) int {
	return int(d * encoder.OpusSampleRate / time.Second)
}
