// Package h264test makes H.264 test streams: real ones encoded by ffmpeg
// (libx264) at test time, and tiny hand-built ones whose every byte a test
// controls.
package h264test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/camd-project/camd/internal/testenv"
)

// Stream describes a stream for Encode. The zero value is one second of
// 320x240 at 30 fps with a keyframe every 30 frames.
type Stream struct {
	// Width and Height default to 320x240.
	Width, Height int
	// Rate is the frame rate (default 30); the SPS carries it as VUI
	// timing.
	Rate int
	// Frames is the frame count (default Rate: one second).
	Frames int
	// GOP is the keyframe interval in frames (default 30). Scene-cut
	// keyframes are off, so keyframes come exactly every GOP frames.
	GOP int
	// Bitrate in bits per second; 0 leaves libx264's default quality.
	Bitrate int
	// AUD adds an access unit delimiter in front of every access unit.
	AUD bool
}

func (s Stream) withDefaults() Stream {
	if s.Width == 0 {
		s.Width, s.Height = 320, 240
	}
	if s.Rate == 0 {
		s.Rate = 30
	}
	if s.Frames == 0 {
		s.Frames = s.Rate
	}
	if s.GOP == 0 {
		s.GOP = 30
	}
	return s
}

// Name is a file name that tells the stream's parameters.
func (s Stream) Name() string {
	s = s.withDefaults()
	name := fmt.Sprintf("x264-%dx%d-%dfps-%dframes-gop%d", s.Width, s.Height, s.Rate, s.Frames, s.GOP)
	if s.Bitrate > 0 {
		name += fmt.Sprintf("-%dk", s.Bitrate/1000)
	}
	if s.AUD {
		name += "-aud"
	}
	return name + ".h264"
}

// NeedFFmpeg skips the test when ffmpeg or ffprobe is not installed (or
// fails it, with CAMD_REQUIRE_TOOLS set).
func NeedFFmpeg(tb testing.TB) {
	tb.Helper()
	testenv.Tools(tb, "ffmpeg", "ffprobe")
}

// Encode writes the stream into dir with ffmpeg's libx264 (no B-frames,
// as camera encoders make them) and returns its path. It skips the test
// when ffmpeg is missing.
func Encode(tb testing.TB, dir string, s Stream) string {
	tb.Helper()
	NeedFFmpeg(tb)
	s = s.withDefaults()
	path := filepath.Join(dir, s.Name())
	if _, err := os.Stat(path); err == nil {
		return path
	}
	args := []string{
		"-hide_banner", "-loglevel", "error", "-nostdin", "-y",
		"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=%dx%d:rate=%d", s.Width, s.Height, s.Rate),
		"-frames:v", strconv.Itoa(s.Frames),
		"-c:v", "libx264", "-pix_fmt", "yuv420p", "-preset", "veryfast",
		"-g", strconv.Itoa(s.GOP), "-keyint_min", strconv.Itoa(s.GOP), "-sc_threshold", "0", "-bf", "0",
	}
	if s.Bitrate > 0 {
		args = append(args, "-b:v", strconv.Itoa(s.Bitrate), "-maxrate", strconv.Itoa(s.Bitrate), "-bufsize", strconv.Itoa(s.Bitrate))
	}
	if s.AUD {
		args = append(args, "-x264-params", "aud=1")
	}
	args = append(args, "-f", "h264", path)
	out, err := exec.Command("ffmpeg", args...).CombinedOutput()
	if err != nil {
		tb.Fatalf("ffmpeg %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return path
}

// CountFrames decodes an H.264 Annex-B stream with ffprobe and returns how
// many frames it holds.
func CountFrames(tb testing.TB, data []byte) int {
	tb.Helper()
	NeedFFmpeg(tb)
	cmd := exec.Command("ffprobe", "-v", "error", "-f", "h264", "-count_frames", "-select_streams", "v",
		"-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", "-i", "pipe:0")
	cmd.Stdin = bytes.NewReader(data)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("ffprobe: %v\n%s", err, stderr.Bytes())
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		tb.Fatalf("ffprobe printed %q: %v", out, err)
	}
	return n
}

// DecodeErrors decodes a stream with ffmpeg and returns what the decoder
// complained about (empty when the stream decoded cleanly).
func DecodeErrors(tb testing.TB, data []byte) string {
	tb.Helper()
	NeedFFmpeg(tb)
	cmd := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-f", "h264", "-i", "pipe:0", "-f", "null", "-")
	cmd.Stdin = bytes.NewReader(data)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Sprintf("ffmpeg: %v: %s", err, out)
	}
	return strings.TrimSpace(string(out))
}
