package synthetic

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/camd-project/camd/media"
	"github.com/camd-project/camd/media/encoder"
	"github.com/camd-project/camd/media/g711"
)

// Source is the synthetic camera. Its methods are safe to call from several
// goroutines; every Run has its own encoders and timeline.
type Source struct {
	opts Options
	log  *slog.Logger
	mute atomic.Bool
	controls
	media.RawHook
}

var _ media.Source = (*Source)(nil)

// New checks opts and returns a synthetic camera.
func New(opts Options) (*Source, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	src := &Source{opts: opts, log: opts.Logger}
	src.SetRaw(opts.Raw)
	return src, nil
}

// Options returns the options in use, defaults filled in.
func (s *Source) Options() Options { return s.opts }

// Info names the source; it encodes itself, so it honours keyframe
// requests.
func (s *Source) Info() media.SourceInfo {
	// Its tone is PCM before it is Opus: G.711 of it too.
	return media.SourceInfo{Name: "synthetic", ForcesKeyframes: true, Audio: !s.opts.NoAudio, G711: !s.opts.NoAudio && s.opts.G711}
}

// SetMute replaces the tone by silence (still sent as Opus packets, so the
// audio track keeps its timing) until called with false.
func (s *Source) SetMute(mute bool) { s.mute.Store(mute) }

// Run draws, encodes and publishes video (and audio unless NoAudio) in real
// time until ctx ends, then returns ctx.Err(). It returns early only if an
// encoder fails. The encoders live for one run.
func (s *Source) Run(ctx context.Context, pub media.Publisher) error {
	venc, err := encoder.NewH264(s.opts.Video)
	if err != nil {
		return fmt.Errorf("synthetic: %w", err)
	}
	defer venc.Close()
	var aenc *encoder.Opus
	if !s.opts.NoAudio {
		aenc, err = encoder.NewOpus(1, 0)
		if err != nil {
			return fmt.Errorf("synthetic: %w", err)
		}
		defer aenc.Close()
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	var (
		wg       sync.WaitGroup
		audioErr error
	)
	if aenc != nil {
		wg.Go(func() {
			if err := s.runAudio(ctx, pub, aenc, start); err != nil && ctx.Err() == nil {
				audioErr = err
				cancel()
			}
		})
	}
	err = s.runVideo(ctx, pub, venc, start)
	cancel()
	wg.Wait()
	st := venc.Stats()
	s.log.Debug("synthetic: stopped", "frames", st.Frames, "keyframes", st.Keyframes,
		"skipped", st.Skipped, "bytes", st.Bytes)
	if audioErr != nil {
		return audioErr
	}
	return err
}

// runVideo draws and encodes a picture on every tick. The frame number
// comes from the time since start, so a late tick skips numbers (the
// counter in the picture shows it) instead of drifting from the audio.
func (s *Source) runVideo(ctx context.Context, pub media.Publisher, enc *encoder.H264, start time.Time) error {
	fps := s.opts.Video.FPS
	period := time.Second / time.Duration(fps)
	pat := newPattern(s.opts.Video.Width, s.opts.Video.Height, fps, !s.opts.Flat)
	img := pat.newImage()
	tick := time.NewTicker(period)
	defer tick.Stop()
	var next uint64
	for {
		now := time.Now()
		n := max(uint64(now.Sub(start)*time.Duration(fps)/time.Second), next)
		if n > next {
			s.log.Debug("synthetic: late, frames dropped", "frames", n-next)
		}
		pat.draw(img, n, s.clock(now))
		s.adjust(img)
		s.OfferRaw(img, now)
		pts := time.Duration(n) * time.Second / time.Duration(fps)
		if err := enc.Encode(pub, img, pts, now); err != nil {
			return fmt.Errorf("synthetic: %w", err)
		}
		next = n + 1
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// maxAudioLag is how far audio may fall behind real time before it
// skips ahead instead of catching up: a microphone's capture buffer
// holds that much. Below it, a late goroutine (a loaded machine) still
// delivers every block, late and in a burst, with its capture time on
// the sample clock, so the simulated board's echo loop and a call's echo
// canceller (which keep 2 s of what the speaker played) see the blocks
// as captured; beyond it (a stalled process, a suspended host) the
// blocks are lost, as in a capture buffer's overrun.
const maxAudioLag = 2 * time.Second

// runAudio publishes one 20 ms Opus packet per 20 ms of real time, each
// once its last sample is due, as a microphone would: paced by its own
// sample clock, a late block is delivered late, not skipped (up to
// maxAudioLag).
func (s *Source) runAudio(ctx context.Context, pub media.Publisher, enc *encoder.Opus, start time.Time) error {
	const rate = encoder.OpusSampleRate
	gen := tone{hz: float64(s.opts.ToneHz), rate: rate, start: start}
	pcm := make([]int16, encoder.OpusFrame)
	var mulaw g711.Encoder
	tick := time.NewTicker(time.Second * encoder.OpusFrame / rate)
	defer tick.Stop()
	var sample uint64 // first sample of the next packet
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		due := durSamples(time.Since(start), rate)
		if lag := due - min(due, sample); lag > durSamples(maxAudioLag, rate) {
			skip := lag / encoder.OpusFrame * encoder.OpusFrame
			s.log.Debug("synthetic: audio late, skipping", "samples", skip)
			sample += skip
		}
		for sample+encoder.OpusFrame <= due {
			if s.mute.Load() {
				clear(pcm)
			} else {
				gen.fill(pcm, sample)
			}
			pts := samplesDur(sample, rate)
			if s.opts.Mic != nil {
				s.opts.Mic(pcm, start.Add(pts))
			}
			pkt, err := enc.Encode(pcm)
			if err != nil {
				return fmt.Errorf("synthetic: %w", err)
			}
			f := &media.Frame{Kind: media.Audio, Data: pkt, PTS: pts, Captured: start.Add(pts)}
			if s.opts.G711 {
				f.G711 = mulaw.Encode(pcm)
			}
			pub.Publish(f)
			sample += encoder.OpusFrame
		}
	}
}

// samplesDur is the duration of n samples at rate, without overflowing
// in long runs.
func samplesDur(n uint64, rate int) time.Duration {
	r := uint64(rate)
	return time.Duration(n/r)*time.Second + time.Duration(n%r)*time.Second/time.Duration(r)
}

// durSamples is the number of whole samples at rate in d (d >= 0).
func durSamples(d time.Duration, rate int) uint64 {
	r := uint64(rate)
	return uint64(d/time.Second)*r + uint64(d%time.Second)*r/uint64(time.Second)
}
