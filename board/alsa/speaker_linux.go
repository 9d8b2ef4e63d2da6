//go:build linux && cgo && !camd_nocapture

package alsa

// #include <stdlib.h>
import "C"

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/gen2brain/malgo"

	"github.com/camd-project/camd/board"
)

// Speaker plays on an ALSA playback device.
type Speaker struct {
	q         *queue
	line      board.PlayoutLine // what the callback sent, when it plays
	latency   time.Duration     // from a callback to the device playing its first frame
	actx      *malgo.AllocatedContext
	dev       *malgo.Device
	closeOnce sync.Once
}

var _ board.PlayoutSpeaker = (*Speaker)(nil)

// The device's period and periods: its buffer, and the output latency
// the playout is stamped with (malgo does not report the buffer ALSA
// settled on: this is an estimate).
const (
	periodMs = 10
	periods  = 3
)

// Open starts playing silence on the ALSA device (a PCM name such as
// "default" or "hw:0,0"; "" is the default device).
func Open(device string, log *slog.Logger) (*Speaker, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	actx, err := malgo.InitContext([]malgo.Backend{malgo.BackendAlsa}, malgo.ContextConfig{}, func(msg string) {
		if msg = strings.TrimSpace(msg); msg != "" && !strings.HasPrefix(msg, "Loading symbol") {
			log.Debug("alsa: miniaudio: " + msg)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	s := &Speaker{q: newQueue(board.SpeakerRate), actx: actx}
	cfg := malgo.DefaultDeviceConfig(malgo.Playback)
	cfg.Playback.Format = malgo.FormatS16
	cfg.Playback.Channels = 1
	cfg.SampleRate = board.SpeakerRate
	cfg.PeriodSizeInMilliseconds = periodMs
	cfg.Periods = periods
	// A callback's frames play after the buffer the device holds: the
	// whole buffer, at most (the estimate the playout is stamped with).
	s.latency = periodMs * periods * time.Millisecond
	// Callbacks follow each other; their stamps jitter with miniaudio's
	// thread by up to a period or two.
	s.line.Slack = s.latency
	if device != "" {
		var id malgo.DeviceID
		if len(device) >= len(id) {
			s.free()
			return nil, fmt.Errorf("alsa: device name longer than %d bytes", len(id)-1)
		}
		copy(id[:], device)
		idC := id.Pointer()
		defer C.free(idC)
		cfg.Playback.DeviceID = idC
	}
	var frame []int16
	s.dev, err = malgo.InitDevice(actx.Context, cfg, malgo.DeviceCallbacks{
		// Data runs on miniaudio's thread: out is its buffer.
		Data: func(out, _ []byte, frames uint32) {
			at := time.Now().Add(s.latency)
			n := min(int(frames), len(out)/2)
			if cap(frame) < n {
				frame = make([]int16, n)
			}
			s.q.pull(frame[:n]) // silence where it ran dry
			s.line.Played(frame[:n], at)
			copy(unsafe.Slice((*int16)(unsafe.Pointer(unsafe.SliceData(out))), n), frame[:n])
		},
	})
	if err != nil {
		s.free()
		return nil, fmt.Errorf("alsa: open %q: %w", device, err)
	}
	if err := s.dev.Start(); err != nil {
		s.Close()
		return nil, fmt.Errorf("alsa: start %q: %w", device, err)
	}
	return s, nil
}

// Play queues pcm (48 kHz mono).
func (s *Speaker) Play(pcm []int16) error {
	s.q.push(pcm)
	return nil
}

// Playout copies into dst what the device played from at on, silence
// where it played nothing; false when at is not within what it keeps
// (the last board.PlayoutWindow). What a callback sent is stamped as
// playing the device's buffer (period × periods) after the callback ran.
func (s *Speaker) Playout(dst []int16, at time.Time) bool { return s.line.Playout(dst, at) }

// Close stops the device. It is safe to call twice.
func (s *Speaker) Close() error {
	s.closeOnce.Do(func() {
		if s.dev != nil {
			s.dev.Uninit()
		}
		s.free()
	})
	return nil
}

func (s *Speaker) free() {
	_ = s.actx.Uninit()
	s.actx.Free()
}
