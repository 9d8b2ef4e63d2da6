// Package fmp4test makes streams of frames for tests of the recording
// path: tiny hand-built H.264 access units whose every byte a test
// controls (no encoder, so they run anywhere, qemu-arm included), or real
// ones encoded by ffmpeg for tests that decode what was recorded.
package fmp4test

import (
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"github.com/camd-project/camd/media"
	"github.com/camd-project/camd/media/h264"
	"github.com/camd-project/camd/media/h264/h264test"
)

// OpusSilence is a valid 20 ms Opus packet (CELT fullband, mono, one
// empty frame), which decoders play as silence.
var OpusSilence = []byte{0xf8}

// Source makes frames in real-time order: video at FPS with a keyframe
// every GOP pictures and, if Audio, a 20 ms Opus packet every 20 ms.
// Timestamps continue from one Frames call to the next.
type Source struct {
	// FPS defaults to 30, GOP to 30 pictures.
	FPS, GOP int
	// Audio adds Opus packets.
	Audio bool
	// FrameBytes is the payload of each hand-built picture (default 800);
	// keyframes are four times as large.
	FrameBytes int
	// Start is the wall-clock time of the first frame (default now).
	Start time.Time
	// AUs, when set, are real access units cycled in order instead of the
	// hand-built ones; GOP is then ignored and their own keyframes count.
	AUs []h264.AccessUnit

	n, audioN int
	clock     time.Duration
}

// Frames returns the frames of the next d of stream.
func (s *Source) Frames(d time.Duration) []*media.Frame {
	if s.FPS == 0 {
		s.FPS = 30
	}
	if s.GOP == 0 {
		s.GOP = 30
	}
	if s.FrameBytes == 0 {
		s.FrameBytes = 800
	}
	if s.Start.IsZero() {
		s.Start = time.Now()
	}
	s.clock += d
	end := s.clock
	var out []*media.Frame
	for {
		vp := s.pts(s.n)
		ap := time.Duration(s.audioN) * 20 * time.Millisecond
		if s.Audio && ap < vp && ap < end {
			out = append(out, &media.Frame{Kind: media.Audio, Data: OpusSilence, PTS: ap, Captured: s.Start.Add(ap)})
			s.audioN++
			continue
		}
		if vp >= end {
			return out
		}
		data, key := s.picture(s.n)
		out = append(out, &media.Frame{Kind: media.Video, Data: data, Key: key, PTS: vp, Captured: s.Start.Add(vp)})
		s.n++
	}
}

func (s *Source) pts(n int) time.Duration {
	return time.Duration(n) * time.Second / time.Duration(s.FPS)
}

func (s *Source) picture(n int) ([]byte, bool) {
	if len(s.AUs) > 0 {
		au := s.AUs[n%len(s.AUs)]
		return au.Data, au.Key
	}
	key := n%s.GOP == 0
	size := s.FrameBytes
	if key {
		size *= 4
	}
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = byte(n+i)%250 + 1 // no zero bytes: no start code inside
	}
	if key {
		return h264test.Join(
			h264test.NALU(0x67, h264test.BaselineSPS(320, 240)[1:]...),
			h264test.NALU(0x68, 0xce, 0x3c, 0x80),
			h264test.Slice(true, 0, payload...),
		), true
	}
	return h264test.Slice(false, 0, payload...), false
}

// RealAUs encodes seconds of 320x240 video at fps with a keyframe every
// gop pictures with ffmpeg (skipping the test without it) and returns its
// access units.
func RealAUs(tb testing.TB, fps, gop, seconds int) []h264.AccessUnit {
	tb.Helper()
	path := h264test.Encode(tb, tb.TempDir(), h264test.Stream{Rate: fps, GOP: gop, Frames: fps * seconds, Bitrate: 500_000})
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	sp := h264.NewSplitter(f)
	var aus []h264.AccessUnit
	for {
		au, err := sp.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			tb.Fatal(err)
		}
		aus = append(aus, au)
	}
	// The splitter keeps the last access unit back; the stream then ends
	// one picture short of a whole GOP, which tests do not mind.
	return aus
}
