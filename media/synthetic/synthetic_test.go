//go:build cgo

package synthetic

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	mch264 "github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"go.uber.org/goleak"

	"github.com/camd-project/camd/internal/testenv"
	"github.com/camd-project/camd/media"
	"github.com/camd-project/camd/media/encoder"
	"github.com/camd-project/camd/media/encoder/encodertest"
	"github.com/camd-project/camd/media/h264"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakePub records what a source publishes. keyAt lists the calls of
// KeyframeRequested (0-based) that answer true; bitrate is what
// TargetBitrate answers. Once until reports true, Publish calls stop.
type fakePub struct {
	keyAt   map[int]bool
	bitrate atomic.Int64
	until   func(video, audio int) bool
	stop    context.CancelFunc

	mu        sync.Mutex
	video     []*media.Frame
	audio     []*media.Frame
	audioSent []time.Time // when each audio packet was published
	keyCalls  int
	// requestedBefore[i] is the number of KeyframeRequested calls made
	// before video frame i was published.
	requestedBefore []int
}

func (p *fakePub) Publish(f *media.Frame) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch f.Kind {
	case media.Video:
		p.video = append(p.video, f)
		p.requestedBefore = append(p.requestedBefore, p.keyCalls)
	case media.Audio:
		p.audio = append(p.audio, f)
		p.audioSent = append(p.audioSent, time.Now())
	}
	if p.until != nil && p.until(len(p.video), len(p.audio)) {
		p.stop()
	}
}

func (p *fakePub) KeyframeRequested() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := p.keyCalls
	p.keyCalls++
	return p.keyAt[n]
}

func (p *fakePub) TargetBitrate() int { return int(p.bitrate.Load()) }

func (p *fakePub) frames() (video, audio []*media.Frame) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*media.Frame(nil), p.video...), append([]*media.Frame(nil), p.audio...)
}

// run runs a source until it has published what until asks for, and
// returns what it published. Tests wait for frames rather than for time so
// that they pass on a loaded machine (or under -race), where the source
// drops frames to keep real time.
func run(t *testing.T, opts Options, pub *fakePub, until func(video, audio int) bool) (video, audio []*media.Frame) {
	t.Helper()
	src, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pub.until, pub.stop = until, cancel
	if err := src.Run(ctx, pub); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled once enough was published", err)
	}
	return pub.frames()
}

// videoFrames returns an until function waiting for n video frames.
func videoFrames(n int) func(video, audio int) bool {
	return func(video, _ int) bool { return video >= n }
}

func nalTypes(au []byte) []int {
	var ts []int
	for _, n := range h264.NALUs(au) {
		ts = append(ts, int(n[0]&0x1f))
	}
	return ts
}

func TestRunPublishesVideoAndAudio(t *testing.T) {
	const w, h, fps = 320, 240, 60
	pub := &fakePub{}
	video, audio := run(t, Options{Video: encoder.H264Options{Width: w, Height: h, FPS: fps}}, pub, func(v, a int) bool { return v >= 60 && a >= 50 })

	first := video[0]
	if !first.Key {
		t.Fatal("first frame is not a keyframe")
	}
	var sps mch264.SPS
	seen := map[int]bool{}
	for _, n := range h264.NALUs(first.Data) {
		seen[int(n[0]&0x1f)] = true
		if n[0]&0x1f == 7 {
			if err := sps.Unmarshal(n); err != nil {
				t.Fatalf("first frame's SPS: %v", err)
			}
		}
	}
	if !seen[5] || !seen[7] || !seen[8] {
		t.Fatalf("first frame has NAL types %v, want SPS (7), PPS (8) and IDR (5)", nalTypes(first.Data))
	}
	if sps.Width() != w || sps.Height() != h {
		t.Errorf("SPS says %dx%d, want %dx%d", sps.Width(), sps.Height(), w, h)
	}

	var last time.Duration = -1
	for i, f := range video {
		if f.Key != h264.Describe(f.Data).Key {
			t.Errorf("frame %d: Key=%v but NAL types %v", i, f.Key, nalTypes(f.Data))
		}
		if f.PTS <= last {
			t.Errorf("frame %d: PTS %v after %v", i, f.PTS, last)
		}
		if n := (f.PTS*fps + time.Second/2) / time.Second; f.PTS != n*time.Second/fps {
			t.Errorf("frame %d: PTS %v is not a multiple of the frame time", i, f.PTS)
		}
		if f.Captured.IsZero() {
			t.Errorf("frame %d: no capture time", i)
		}
		last = f.PTS
	}

	// Audio: a 20 ms Opus packet every 20 ms, never ahead of real time.
	// A source that falls more than maxAudioLag behind skips ahead:
	// allow a few gaps.
	pub.mu.Lock()
	sent := pub.audioSent
	pub.mu.Unlock()
	gaps := 0
	for i, f := range audio {
		if err := encodertest.CheckOpusTOC(f.Data); err != nil {
			t.Fatalf("audio packet %d: %v", i, err)
		}
		if f.PTS%(20*time.Millisecond) != 0 {
			t.Fatalf("audio packet %d: PTS %v is not a multiple of 20 ms", i, f.PTS)
		}
		if i == 0 {
			continue
		}
		if d := f.PTS - audio[i-1].PTS; d != 20*time.Millisecond {
			if d <= 0 {
				t.Fatalf("audio packet %d: PTS %v after %v", i, f.PTS, audio[i-1].PTS)
			}
			gaps++
		}
		// Captured is the wall time of the first sample: the packet is
		// complete 20 ms later.
		if early := f.Captured.Add(20 * time.Millisecond).Sub(sent[i]); early > time.Millisecond {
			t.Errorf("audio packet %d published %v ahead of real time", i, early)
		}
	}
	if gaps > len(audio)/10 {
		t.Errorf("%d gaps in %d audio packets", gaps, len(audio))
	}
}

// TestLateMicrophoneDeliversEveryBlock: a microphone whose goroutine
// falls behind (here it stalls in its Mic callback, on synctest's
// clock) delivers every block it owes, late, with capture times on its
// own sample clock, as a capture buffer would, so that the simulated
// board's echo loop and a call's echo canceller see no jump; only a
// stall longer than its buffer (maxAudioLag) loses blocks.
func TestLateMicrophoneDeliversEveryBlock(t *testing.T) {
	for _, c := range []struct {
		stall time.Duration
		lost  bool
	}{{300 * time.Millisecond, false}, {1500 * time.Millisecond, false}, {maxAudioLag + time.Second, true}} {
		t.Run(c.stall.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				enc, err := encoder.NewOpus(1, 0)
				if err != nil {
					t.Fatal(err)
				}
				defer enc.Close()
				start := time.Now()
				var captured []time.Time
				stalled := false
				src, err := New(Options{Mic: func(pcm []int16, at time.Time) {
					captured = append(captured, at)
					if !stalled && at.Sub(start) >= time.Second {
						stalled = true
						time.Sleep(c.stall)
					}
				}})
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				pub := &fakePub{stop: cancel, until: func(_, audio int) bool { return audio >= 200 }}
				src.runAudio(ctx, pub, enc, start)

				_, audio := pub.frames()
				var gaps int
				var late time.Duration
				for i, f := range audio {
					if !f.Captured.Equal(start.Add(f.PTS)) || !captured[i].Equal(f.Captured) {
						t.Fatalf("packet %d: PTS %v captured %v, the Mic saw %v (start %v)", i, f.PTS, f.Captured, captured[i], start)
					}
					if i > 0 && f.PTS-audio[i-1].PTS != 20*time.Millisecond {
						gaps++
					}
					late = max(late, pub.audioSent[i].Sub(f.Captured.Add(20*time.Millisecond)))
				}
				if c.lost != (gaps > 0) {
					t.Fatalf("a stall of %v: %d gaps in the blocks (lost: %v)", c.stall, gaps, c.lost)
				}
				if !c.lost && late < c.stall-20*time.Millisecond {
					t.Fatalf("a stall of %v: the latest block was %v late", c.stall, late)
				}
			})
		})
	}
}

func TestRunKeyframeRequest(t *testing.T) {
	// The 30th and 60th calls ask for a keyframe; periodic ones are off.
	pub := &fakePub{keyAt: map[int]bool{30: true, 60: true}}
	video, _ := run(t, Options{Video: encoder.H264Options{Width: 320, Height: 240, FPS: 60, KeyframeInterval: -1}, NoAudio: true}, pub, videoFrames(80))
	pub.mu.Lock()
	before := pub.requestedBefore
	pub.mu.Unlock()
	var keys []int
	for i, f := range video {
		if f.Key {
			keys = append(keys, i)
		}
	}
	// The frame encoded right after call c is the first one published
	// after c+1 calls; it (or, within 1-2 frames, the next) must be an
	// IDR.
	for _, call := range []int{30, 60} {
		i := 0
		for i < len(before) && before[i] < call+1 {
			i++
		}
		if i+1 >= len(video) || !(video[i].Key || video[i+1].Key) {
			t.Errorf("keyframe request at call %d: keyframes at frames %v, want frame %d or %d", call, keys, i, i+1)
		}
	}
	if len(keys) != 3 {
		t.Errorf("keyframes at frames %v, want the first and two requested", keys)
	}
}

func TestRunPeriodicKeyframes(t *testing.T) {
	const interval = 400 * time.Millisecond
	pub := &fakePub{}
	video, _ := run(t, Options{Video: encoder.H264Options{Width: 320, Height: 240, FPS: 60, KeyframeInterval: interval}, NoAudio: true}, pub, videoFrames(90))
	var keys []time.Duration
	var maxStep time.Duration // late ticks skip frame numbers
	for i, f := range video {
		if f.Key {
			keys = append(keys, f.PTS)
		}
		if i > 0 {
			maxStep = max(maxStep, f.PTS-video[i-1].PTS)
		}
	}
	if len(keys) < 3 {
		t.Fatalf("keyframes at %v, want one every %v", keys, interval)
	}
	for i := 1; i < len(keys); i++ {
		if d := keys[i] - keys[i-1]; d < interval || d >= interval+maxStep {
			t.Errorf("keyframes at %v: gap %v, want %v", keys, d, interval)
		}
	}
}

func TestRunReturnsPromptlyOnCancel(t *testing.T) {
	src, err := New(Options{Video: encoder.H264Options{Width: 320, Height: 240}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	// Cancel once Run is under way: it has published a picture.
	running := make(chan struct{})
	pub := &fakePub{until: func(video, _ int) bool { return video > 0 }, stop: sync.OnceFunc(func() { close(running) })}
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, pub) }()
	select {
	case <-running:
	case err := <-done:
		t.Fatalf("Run = %v before publishing", err)
	}
	cancel()
	t0 := time.Now()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %v, want context.Canceled", err)
		}
		// One frame's draw and encode, plus scheduling on a busy host.
		if d := time.Since(t0); d > 500*time.Millisecond {
			t.Errorf("Run took %v to return", d)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not return")
	}
	// Run again: the source is reusable and starts with a keyframe.
	video, _ := run(t, Options{Video: encoder.H264Options{Width: 320, Height: 240}, NoAudio: true}, &fakePub{}, videoFrames(1))
	if !video[0].Key {
		t.Fatal("second run does not start with a keyframe")
	}
}

func TestRunNoAudioAndMute(t *testing.T) {
	_, audio := run(t, Options{Video: encoder.H264Options{Width: 320, Height: 240}, NoAudio: true}, &fakePub{}, videoFrames(15))
	if len(audio) != 0 {
		t.Errorf("NoAudio published %d audio packets", len(audio))
	}

	src, err := New(Options{Video: encoder.H264Options{Width: 320, Height: 240}})
	if err != nil {
		t.Fatal(err)
	}
	src.SetMute(true)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pub := &fakePub{until: func(_, a int) bool { return a >= 60 }, stop: cancel}
	if err := src.Run(ctx, pub); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	_, audio = pub.frames()
	// A second holds a beep unless muted. Beep packets take 75 to 130
	// bytes at 32 kbps; silence from the start takes 35 (3 after sound).
	for i, f := range audio {
		if len(f.Data) > 50 {
			t.Errorf("muted packet %d is %d bytes, more than silence", i, len(f.Data))
		}
	}
}

// TestFFprobeDecodes writes two seconds of output as a raw H.264 file and
// asks ffprobe to decode it.
func TestFFprobeDecodes(t *testing.T) {
	ffprobe := testenv.Tool(t, "ffprobe")
	const w, h = 320, 240
	video, _ := run(t, Options{Video: encoder.H264Options{Width: w, Height: h, FPS: 30, KeyframeInterval: time.Second}, NoAudio: true}, &fakePub{}, videoFrames(60))
	path := filepath.Join(t.TempDir(), "synthetic.h264")
	var data []byte
	for _, f := range video {
		data = append(data, f.Data...)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(ffprobe, "-v", "error", "-count_frames", "-select_streams", "v:0",
		"-show_entries", "stream=codec_name,width,height,nb_read_frames", "-of", "default=noprint_wrappers=1", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe: %v\n%s", err, out)
	}
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			got[k] = v
		}
	}
	want := map[string]string{
		"codec_name":     "h264",
		"width":          strconv.Itoa(w),
		"height":         strconv.Itoa(h),
		"nb_read_frames": strconv.Itoa(len(video)),
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("ffprobe %s = %q, want %q (output:\n%s)", k, got[k], v, out)
		}
	}
}

func TestValidate(t *testing.T) {
	encodertest.CheckValidate(t, "synthetic", func(v encoder.H264Options) error {
		_, err := New(Options{Video: v})
		return err
	})
	_, err := New(Options{ToneHz: 10})
	if want := "synthetic: ToneHz 10 must be within 20..8000"; err == nil || err.Error() != want {
		t.Errorf("New = %v, want %q", err, want)
	}
}

func TestDefaults(t *testing.T) {
	src, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	o := src.Options()
	encodertest.CheckDefaults(t, o.Video, o.Logger)
	if o.ToneHz != 440 {
		t.Errorf("ToneHz = %d, want 440", o.ToneHz)
	}
	if info := src.Info(); info.Name != "synthetic" || !info.ForcesKeyframes {
		t.Errorf("Info = %+v", info)
	}
}

// G.711 is encoded only when asked for (an RTSP server): the sound is
// otherwise carried as Opus alone, and the audio path does no more.
func TestG711OnlyWhenAsked(t *testing.T) {
	for _, want := range []bool{false, true} {
		s, err := New(Options{G711: want})
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Info().G711; got != want {
			t.Errorf("Options.G711 %v: Info().G711 %v", want, got)
		}
	}
	if s, _ := New(Options{G711: true, NoAudio: true}); s.Info().G711 {
		t.Error("G.711 without audio")
	}
}
