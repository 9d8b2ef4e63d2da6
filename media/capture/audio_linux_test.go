//go:build linux && cgo && !camd_nocapture

package capture

import (
	"bytes"
	"context"
	"encoding/binary"
	"log/slog"
	"math"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4/pkg/media/oggwriter"

	"github.com/camd-project/camd/internal/testenv"
	"github.com/camd-project/camd/media"
	"github.com/camd-project/camd/media/encoder"
	"github.com/camd-project/camd/media/encoder/encodertest"
)

// sine returns n samples of a hz sine at a third of full scale, from
// sample first on.
func sine(hz float64, first, n int) []int16 {
	pcm := make([]int16, n)
	for i := range pcm {
		pcm[i] = int16(math.MaxInt16 / 3 * math.Sin(2*math.Pi*hz*float64(first+i)/encoder.OpusSampleRate))
	}
	return pcm
}

// newStage returns an audio stage with a real Opus encoder that publishes
// into pub, its run started at start.
func newStage(t *testing.T, pub media.Publisher, start time.Time, mute *atomic.Bool) *audioStage {
	t.Helper()
	enc, err := encoder.NewOpus(1, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { enc.Close() })
	if mute == nil {
		mute = new(atomic.Bool)
	}
	return &audioStage{enc: enc, pub: pub, start: start, mute: mute, log: slog.New(slog.DiscardHandler)}
}

// feed delivers d of a 440 Hz sine in chunks of chunk samples to a, the
// chunk holding sample k arriving at arrive(k) for the sample after its
// last.
func feed(t *testing.T, a *audioStage, first, total, chunk int, arrive func(end int) time.Time) {
	t.Helper()
	for k := first; k < first+total; k += chunk {
		n := min(chunk, first+total-k)
		if err := a.write(sine(440, k, n), arrive(k+n)); err != nil {
			t.Fatal(err)
		}
	}
}

// checkPackets checks every packet's TOC, Captured and PTS: growing by 20 ms
// exactly, except at gaps allowed by gapOK.
func checkPackets(t *testing.T, audio []*media.Frame, start time.Time, gapOK func(i int, d time.Duration) bool) {
	t.Helper()
	for i, f := range audio {
		if f.Kind != media.Audio {
			t.Fatalf("packet %d is %v", i, f.Kind)
		}
		if err := encodertest.CheckOpusTOC(f.Data); err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		if !f.Captured.Equal(start.Add(f.PTS)) {
			t.Fatalf("packet %d: captured %v, PTS %v after the start %v", i, f.Captured, f.PTS, start)
		}
		if i == 0 {
			continue
		}
		if d := f.PTS - audio[i-1].PTS; d != blockDur && (d < blockDur || !gapOK(i, d)) {
			t.Fatalf("packet %d: PTS %v after %v", i, f.PTS, audio[i-1].PTS)
		}
	}
}

// TestAudioStageCadence feeds a second of sine in chunks of various sizes,
// each arriving on time: 50 packets, 20 ms apart from PTS 0.
func TestAudioStageCadence(t *testing.T) {
	for _, chunk := range []int{480, 441, 960, 1024, 4800} {
		t.Run(strconv.Itoa(chunk), func(t *testing.T) {
			start := time.Unix(1_700_000_000, 0)
			pub := &recordPub{}
			a := newStage(t, pub, start, nil)
			feed(t, a, 0, encoder.OpusSampleRate, chunk, func(end int) time.Time { return start.Add(samplesDur(end)) })
			_, audio := pub.split()
			if len(audio) != 50 {
				t.Fatalf("%d packets from 1 s, want 50", len(audio))
			}
			if audio[0].PTS != 0 {
				t.Errorf("first PTS %v, want 0", audio[0].PTS)
			}
			checkPackets(t, audio, start, func(int, time.Duration) bool { return false })
			if a.dropped != 0 || a.skipped != 0 {
				t.Errorf("dropped %d samples, skipped %v", a.dropped, a.skipped)
			}
		})
	}
}

// TestAudioStageStartsAtCaptureTime: the first packet's PTS is when its
// first sample was captured, on the video's timeline.
func TestAudioStageStartsAtCaptureTime(t *testing.T) {
	start := time.Unix(1_700_000_000, 0)
	pub := &recordPub{}
	a := newStage(t, pub, start, nil)
	const offset = 137 * time.Millisecond // the microphone started late
	feed(t, a, 0, encoder.OpusSampleRate/5, 480, func(end int) time.Time { return start.Add(offset + samplesDur(end)) })
	_, audio := pub.split()
	if len(audio) != 10 || audio[0].PTS != offset {
		t.Fatalf("%d packets, first PTS %v; want 10 from %v", len(audio), audio[0].PTS, offset)
	}
	checkPackets(t, audio, start, func(int, time.Duration) bool { return false })
}

// TestAudioStageJitter: deliveries up to 50 ms late change nothing.
func TestAudioStageJitter(t *testing.T) {
	start := time.Unix(1_700_000_000, 0)
	pub := &recordPub{}
	a := newStage(t, pub, start, nil)
	late := []time.Duration{0, 3, 50, 1, 0, 20, 7, 0, 45, 2}
	i := 0
	feed(t, a, 0, 10*encoder.OpusSampleRate, 480, func(end int) time.Time {
		i++
		return start.Add(samplesDur(end) + late[i%len(late)]*time.Millisecond)
	})
	_, audio := pub.split()
	if len(audio) != 500 {
		t.Fatalf("%d packets from 10 s, want 500", len(audio))
	}
	checkPackets(t, audio, start, func(int, time.Duration) bool { return false })
	if a.dropped != 0 || a.skipped != 0 {
		t.Errorf("dropped %d samples, skipped %v", a.dropped, a.skipped)
	}
}

// TestAudioStageAhead: a device that delivers faster than real time (the
// ALSA null device delivers as fast as it is read) cannot run ahead of the
// wall clock by more than maxAudioLead.
func TestAudioStageAhead(t *testing.T) {
	start := time.Unix(1_700_000_000, 0)
	pub := &recordPub{}
	a := newStage(t, pub, start, nil)
	// 10 s of samples in 100 ms of wall time.
	feed(t, a, 0, 10*encoder.OpusSampleRate, 480, func(end int) time.Time { return start.Add(samplesDur(end) / 100) })
	_, audio := pub.split()
	if want := int((100*time.Millisecond + maxAudioLead) / blockDur); len(audio) > want+1 || len(audio) < want-1 {
		t.Errorf("%d packets in 100 ms, want about %d", len(audio), want)
	}
	if a.dropped == 0 {
		t.Error("nothing dropped")
	}
	checkPackets(t, audio, start, func(int, time.Duration) bool { return false })

	// A clock 1% fast: the lead stays bounded over a minute.
	pub = &recordPub{}
	a = newStage(t, pub, start, nil)
	feed(t, a, 0, 60*encoder.OpusSampleRate, 480, func(end int) time.Time { return start.Add(samplesDur(end) * 100 / 101) })
	_, audio = pub.split()
	last := audio[len(audio)-1]
	if lead := last.PTS + blockDur - samplesDur(60*encoder.OpusSampleRate)*100/101; lead > maxAudioLead {
		t.Errorf("audio ends %v ahead of the clock", lead)
	}
	checkPackets(t, audio, start, func(int, time.Duration) bool { return false })
}

// TestAudioStageBehind: samples lost (the reader fell behind and the queue
// overflowed) leave a gap in the PTS instead of delaying the sound for the
// rest of the run.
func TestAudioStageBehind(t *testing.T) {
	start := time.Unix(1_700_000_000, 0)
	pub := &recordPub{}
	a := newStage(t, pub, start, nil)
	const lost = 300 * time.Millisecond
	feed(t, a, 0, encoder.OpusSampleRate, 480, func(end int) time.Time { return start.Add(samplesDur(end)) })
	// The next samples are delivered after a 300 ms hole.
	feed(t, a, encoder.OpusSampleRate, 5*encoder.OpusSampleRate, 480, func(end int) time.Time { return start.Add(samplesDur(end) + lost) })
	_, audio := pub.split()
	gaps := 0
	checkPackets(t, audio, start, func(i int, d time.Duration) bool {
		gaps++
		return d > lost-blockDur && d < lost+2*blockDur
	})
	if gaps != 1 {
		t.Errorf("%d gaps, want one", gaps)
	}
	// Audio ends where the wall clock does.
	end := samplesDur(6*encoder.OpusSampleRate) + lost
	if last := audio[len(audio)-1].PTS + blockDur; last < end-blockDur || last > end {
		t.Errorf("audio ends at %v, the clock at %v", last, end)
	}
}

// TestAudioStageMute: muted, the packets carry silence, still every 20 ms.
func TestAudioStageMute(t *testing.T) {
	start := time.Unix(1_700_000_000, 0)
	pub := &recordPub{}
	var mute atomic.Bool
	a := newStage(t, pub, start, &mute)
	at := func(end int) time.Time { return start.Add(samplesDur(end)) }
	feed(t, a, 0, encoder.OpusSampleRate, 480, at)
	mute.Store(true)
	feed(t, a, encoder.OpusSampleRate, encoder.OpusSampleRate, 480, at)
	_, audio := pub.split()
	if len(audio) != 100 {
		t.Fatalf("%d packets from 2 s, want 100", len(audio))
	}
	checkPackets(t, audio, start, func(int, time.Duration) bool { return false })
	sound, silence := 0, 0
	for _, f := range audio[:50] {
		sound += len(f.Data)
	}
	for i, f := range audio[52:] {
		silence += len(f.Data)
		if len(f.Data) > 10 {
			t.Errorf("muted packet %d is %d bytes", 52+i, len(f.Data))
		}
	}
	t.Logf("average packet: %d bytes of sine, %d of silence", sound/50, silence/48)
}

// TestAudioStageDecodes writes a second of sine and a muted second as Ogg
// Opus and has ffmpeg decode them.
func TestAudioStageDecodes(t *testing.T) {
	ffmpeg := testenv.Tool(t, "ffmpeg")
	start := time.Unix(1_700_000_000, 0)
	pub := &recordPub{}
	var mute atomic.Bool
	a := newStage(t, pub, start, &mute)
	at := func(end int) time.Time { return start.Add(samplesDur(end)) }
	feed(t, a, 0, encoder.OpusSampleRate, 480, at)
	mute.Store(true)
	feed(t, a, encoder.OpusSampleRate, encoder.OpusSampleRate, 480, at)
	_, audio := pub.split()

	path := filepath.Join(t.TempDir(), "mic.ogg")
	w, err := oggwriter.New(path, encoder.OpusSampleRate, 1)
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range audio {
		p := &rtp.Packet{
			Header:  rtp.Header{Version: 2, SequenceNumber: uint16(i), Timestamp: uint32(durSamples(f.PTS))},
			Payload: f.Data,
		}
		if err := w.WriteRTP(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var out, stderr bytes.Buffer
	cmd := exec.Command(ffmpeg, "-v", "error", "-i", path, "-f", "s16le", "-ac", "1", "-ar", "48000", "-")
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil || stderr.Len() > 0 {
		t.Fatalf("ffmpeg: %v\n%s", err, stderr.String())
	}
	pcm := make([]int16, out.Len()/2)
	if err := binary.Read(&out, binary.LittleEndian, pcm); err != nil {
		t.Fatal(err)
	}
	if len(pcm) < 19*encoder.OpusSampleRate/10 {
		t.Fatalf("decoded %d samples, want about 2 s", len(pcm))
	}
	rms := func(s []int16) float64 {
		var sum float64
		for _, v := range s {
			sum += float64(v) * float64(v)
		}
		return math.Sqrt(sum / float64(len(s)))
	}
	// The middle of the first second: 440 Hz at a third of full scale
	// (RMS 7700), 440 crossings of zero upwards.
	tone := pcm[encoder.OpusSampleRate/4 : 3*encoder.OpusSampleRate/4]
	ups := 0
	for i := 1; i < len(tone); i++ {
		if tone[i-1] < 0 && tone[i] >= 0 {
			ups++
		}
	}
	if r := rms(tone); r < 6000 || r > 9500 || ups < 215 || ups > 225 {
		t.Errorf("tone: RMS %.0f, %d periods in 0.5 s; want about 7700 and 220", r, ups)
	}
	if r := rms(pcm[5*encoder.OpusSampleRate/4 : 7*encoder.OpusSampleRate/4]); r > 30 {
		t.Errorf("muted: RMS %.0f, want silence", r)
	}
}

// fakeMic opens microphones that deliver a 440 Hz sine in real time in
// 10 ms chunks, as ALSA would, until closed; with stopAfter set the device
// stops by itself after that long.
type fakeMic struct {
	stopAfter time.Duration

	mu     sync.Mutex
	wants  []string
	closes int
}

func (f *fakeMic) open(want string) (*mic, error) {
	f.mu.Lock()
	f.wants = append(f.wants, want)
	f.mu.Unlock()
	chunks := make(chan pcmChunk, micQueue)
	stopped := make(chan struct{})
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t0 := time.Now()
		tick := time.NewTicker(micPeriod)
		defer tick.Stop()
		sent := 0
		for {
			select {
			case <-quit:
				return
			case <-tick.C:
			}
			now := time.Now()
			if f.stopAfter > 0 && now.Sub(t0) >= f.stopAfter {
				close(stopped)
				<-quit
				return
			}
			due := durSamples(now.Sub(t0))
			select {
			case chunks <- pcmChunk{samples: sine(440, sent, due-sent), at: now}:
			default:
			}
			sent = due
		}
	})
	return &mic{name: "fake", chunks: chunks, stopped: stopped, close: func() {
		close(quit)
		wg.Wait()
		f.mu.Lock()
		f.closes++
		f.mu.Unlock()
	}}, nil
}

// logRecorder keeps the messages logged at each level.
type logRecorder struct {
	mu   sync.Mutex
	msgs map[slog.Level][]string
}

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.msgs == nil {
		h.msgs = map[slog.Level][]string{}
	}
	h.msgs[r.Level] = append(h.msgs[r.Level], r.Message)
	return nil
}
func (h *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logRecorder) WithGroup(string) slog.Handler      { return h }

func (h *logRecorder) count(level slog.Level, msg string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, m := range h.msgs[level] {
		if m == msg {
			n++
		}
	}
	return n
}

func TestRunStreamsCameraAndMicrophone(t *testing.T) {
	dev, cam := registerFakeCamera(t)
	src, err := New(Options{Device: dev, Video: encoder.H264Options{Width: 320, Height: 240}, Microphone: "USB"})
	if err != nil {
		t.Fatal(err)
	}
	fm := &fakeMic{}
	src.openMic = fm.open
	video, audio := runUntil(t, src, func(video, audio int) bool { return video >= 20 && audio >= 20 })
	checkVideo(t, video, 20)
	// The fake delivers every sample on time: no gaps.
	checkPackets(t, audio, audio[0].Captured.Add(-audio[0].PTS), func(int, time.Duration) bool { return false })
	// Both count from the start of the run: the first packet's PTS is how
	// long after the start it came, which a busy machine stretches, but
	// not to seconds (a timeline from another origin would be far off).
	if a, v := audio[0].PTS, video[0].PTS; a < 0 || v < 0 || a > 2*time.Second || v > 2*time.Second {
		t.Errorf("first audio PTS %v, video %v; want both from the start of the run", a, v)
	}
	if c0, v0 := audio[0].Captured.Add(-audio[0].PTS), video[0].Captured.Add(-video[0].PTS); c0.Sub(v0).Abs() > 20*time.Millisecond {
		t.Errorf("audio and video timelines start %v apart", c0.Sub(v0))
	}
	fm.mu.Lock()
	defer fm.mu.Unlock()
	if len(fm.wants) != 1 || fm.wants[0] != "USB" || fm.closes != 1 {
		t.Errorf("microphone opened for %q, closed %d times; want once for \"USB\"", fm.wants, fm.closes)
	}
	cam.mu.Lock()
	defer cam.mu.Unlock()
	if cam.closes != 1 {
		t.Errorf("camera closed %d times", cam.closes)
	}
}

func TestRunMute(t *testing.T) {
	dev, _ := registerFakeCamera(t)
	src, err := New(Options{Device: dev, Video: encoder.H264Options{Width: 320, Height: 240}})
	if err != nil {
		t.Fatal(err)
	}
	src.openMic = (&fakeMic{}).open
	src.SetMute(true)
	_, audio := runUntil(t, src, func(_, audio int) bool { return audio >= 10 })
	if len(audio) < 10 {
		t.Fatalf("%d audio packets muted, want one every 20 ms", len(audio))
	}
	// Silence from the start takes 35 bytes at 32 kbps; the sine 80.
	for i, f := range audio {
		if len(f.Data) > 40 {
			t.Errorf("muted packet %d is %d bytes, more than silence", i, len(f.Data))
		}
	}
}

// TestRunWithoutMicrophone: video only, and one warning however often Run
// restarts, until a microphone is found and lost again.
func TestRunWithoutMicrophone(t *testing.T) {
	dev, _ := registerFakeCamera(t)
	logs := &logRecorder{}
	src, err := New(Options{Device: dev, Video: encoder.H264Options{Width: 320, Height: 240}, Logger: slog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	fm := &fakeMic{}
	for i, open := range []func(string) (*mic, error){noMic, noMic, fm.open, noMic} {
		src.openMic = open
		withMic := i == 2
		video, audio := runUntil(t, src, func(video, audio int) bool { return video >= 5 && (!withMic || audio > 0) })
		checkVideo(t, video, 5)
		if (len(audio) > 0) != withMic {
			t.Errorf("run %d: %d audio packets", i, len(audio))
		}
	}
	const msg = "capture: no microphone; streaming video only"
	if w, d := logs.count(slog.LevelWarn, msg), logs.count(slog.LevelDebug, msg); w != 2 || d != 1 {
		t.Errorf("%d warnings and %d debug messages, want 2 and 1", w, d)
	}
}

func TestRunNoAudio(t *testing.T) {
	dev, _ := registerFakeCamera(t)
	src, err := New(Options{Device: dev, Video: encoder.H264Options{Width: 320, Height: 240}, NoAudio: true})
	if err != nil {
		t.Fatal(err)
	}
	src.openMic = func(string) (*mic, error) {
		t.Error("NoAudio opened the microphone")
		return noMic("")
	}
	video, audio := runUntil(t, src, videoFrames(5))
	checkVideo(t, video, 5)
	if len(audio) != 0 {
		t.Errorf("NoAudio published %d audio packets", len(audio))
	}
}

// TestRunMicrophoneStops: a microphone that stops (unplugged) ends the run,
// so that the supervisor restarts it (with video only if it is gone).
func TestRunMicrophoneStops(t *testing.T) {
	dev, cam := registerFakeCamera(t)
	src, err := New(Options{Device: dev, Video: encoder.H264Options{Width: 320, Height: 240}})
	if err != nil {
		t.Fatal(err)
	}
	fm := &fakeMic{stopAfter: 200 * time.Millisecond}
	src.openMic = fm.open
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pub := &recordPub{}
	err = src.Run(ctx, pub)
	if err == nil || ctx.Err() != nil || err.Error() != "capture: microphone fake stopped" {
		t.Fatalf("Run = %v, want the microphone's error at once", err)
	}
	if video, audio := pub.split(); len(video) == 0 || len(audio) == 0 {
		t.Errorf("%d video frames and %d audio packets before the microphone stopped", len(video), len(audio))
	}
	fm.mu.Lock()
	defer fm.mu.Unlock()
	cam.mu.Lock()
	defer cam.mu.Unlock()
	if fm.closes != 1 || cam.closes != 1 {
		t.Errorf("microphone closed %d times, camera %d; want once each", fm.closes, cam.closes)
	}
}

// TestRunAudioStall: a microphone that goes quiet without stopping ends the
// run after micStall.
func TestRunAudioStall(t *testing.T) {
	t.Parallel()
	src, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	enc, err := encoder.NewOpus(1, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	m := &mic{name: "quiet", chunks: make(chan pcmChunk), stopped: make(chan struct{}), close: func() {}}
	t0 := time.Now()
	err = src.runAudio(context.Background(), &recordPub{}, m, enc, t0)
	if err == nil || !strings.Contains(err.Error(), "capture: microphone quiet delivered nothing for 2s") {
		t.Fatalf("runAudio = %v", err)
	}
	if d := time.Since(t0); d < micStall || d > micStall+time.Second {
		t.Errorf("gave up after %v, want %v", d, micStall)
	}
}
