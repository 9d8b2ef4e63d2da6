package passthrough_test

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/png"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/camd-project/camd/media"
	"github.com/camd-project/camd/media/h264"
	"github.com/camd-project/camd/media/h264/h264test"
	"github.com/camd-project/camd/media/passthrough"
)

// TestFileOnce plays a file once: every access unit but the last (which
// cannot be known complete) comes out byte-identical, paced at the SPS
// frame rate, with keyframes where libx264 put them.
func TestFileOnce(t *testing.T) {
	stream := h264test.Stream{Rate: 100, Frames: 30, GOP: 10}
	path, data := encode(t, stream)
	log, logs := newLogger()
	pub := newPublisher()
	began := time.Now()
	err := mustNew(t, passthrough.Options{File: path, NoLoop: true, Logger: log}).Run(context.Background(), pub)
	elapsed := time.Since(began)
	if !errors.Is(err, io.EOF) || !strings.HasPrefix(err.Error(), "passthrough: file:") {
		t.Fatalf("Run: %v, want a passthrough error wrapping io.EOF", err)
	}
	frames := pub.Frames()
	if len(frames) != stream.Frames-1 {
		t.Fatalf("%d frames, want %d", len(frames), stream.Frames-1)
	}
	all := concat(frames)
	if !bytes.HasPrefix(data, all) {
		t.Fatal("published frames differ from the file")
	}
	if n := h264test.CountFrames(t, all); n != len(frames) {
		t.Fatalf("ffprobe decodes %d frames from %d published", n, len(frames))
	}
	for i, f := range frames {
		if f.Kind != media.Video || f.Key != (i%stream.GOP == 0) {
			t.Errorf("frame %d: kind %v key %v", i, f.Kind, f.Key)
		}
		if want := time.Duration(i) * 10 * time.Millisecond; f.PTS != want {
			t.Errorf("frame %d: PTS %v, want %v", i, f.PTS, want)
		}
		if f.Captured.Before(began) || f.Captured.After(began.Add(elapsed)) {
			t.Errorf("frame %d: Captured %v outside the run", i, f.Captured)
		}
	}
	// 29 frames at 100 fps: the last is due 280 ms after the first.
	if elapsed < 250*time.Millisecond {
		t.Errorf("29 frames at 100 fps took %v; pacing is off", elapsed)
	}
	if n := strings.Count(logs.String(), "final access unit dropped"); n != 1 {
		t.Errorf("dropped access unit logged %d times:\n%s", n, logs)
	}
	if !strings.Contains(logs.String(), "width=320 height=240") {
		t.Errorf("stream parameters not logged:\n%s", logs)
	}
}

// TestFileEndOfStream: an end of stream NAL unit proves the last access
// unit complete, so one pass publishes every frame of the file.
func TestFileEndOfStream(t *testing.T) {
	stream := h264test.Stream{Rate: 100, Frames: 20, GOP: 10}
	_, data := encode(t, stream)
	data = append(data, 0, 0, 0, 1, 0x0b)
	path := writeFile(t, "eos.h264", data)
	log, logs := newLogger()
	pub := newPublisher()
	err := mustNew(t, passthrough.Options{File: path, NoLoop: true, Logger: log}).Run(context.Background(), pub)
	if !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	frames := pub.Frames()
	if !bytes.Equal(concat(frames), data) {
		t.Fatalf("published %d frames that differ from the file", len(frames))
	}
	if n := h264test.CountFrames(t, concat(frames)); n != stream.Frames {
		t.Fatalf("ffprobe decodes %d frames, the file has %d", n, stream.Frames)
	}
	if strings.Contains(logs.String(), "dropped") {
		t.Errorf("nothing should be dropped:\n%s", logs)
	}
}

// TestFileLoop plays a file over and over: timestamps continue across
// passes, each pass starts at a keyframe, and the dropped last access unit
// is logged once per run.
func TestFileLoop(t *testing.T) {
	stream := h264test.Stream{Rate: 100, Frames: 10, GOP: 5}
	path, data := encode(t, stream)
	aus := split(t, data) // 9 access units: the last is dropped
	log, logs := newLogger()
	pub := newPublisher()
	run := start(t, mustNew(t, passthrough.Options{File: path, Logger: log}), pub)
	frames := pub.wait(t, 3*len(aus)+1, 5*time.Second)
	if err := run.stop(t); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run after cancel: %v", err)
	}
	for i, f := range frames {
		if !bytes.Equal(f.Data, aus[i%len(aus)].Data) {
			t.Fatalf("frame %d is not access unit %d of the file", i, i%len(aus))
		}
		if want := time.Duration(i) * 10 * time.Millisecond; f.PTS != want {
			t.Fatalf("frame %d: PTS %v, want %v", i, f.PTS, want)
		}
		if f.Key != (i%len(aus)%stream.GOP == 0) {
			t.Errorf("frame %d: key %v", i, f.Key)
		}
	}
	if took := pub.times[len(frames)-1].Sub(pub.times[0]); took < time.Duration(len(frames)-1)*9*time.Millisecond {
		t.Errorf("%d frames at 100 fps took %v", len(frames), took)
	}
	if n := strings.Count(logs.String(), "final access unit dropped"); n != 1 {
		t.Errorf("dropped access unit logged %d times in 3 passes:\n%s", n, logs)
	}
}

// TestFileFPS paces a stream whose SPS has no frame rate at Options.FPS.
func TestFileFPS(t *testing.T) {
	var stream []byte
	for i := range 31 {
		if i%10 == 0 {
			stream = h264test.Join(stream, []byte{0, 0, 0, 1}, h264test.SPSNoVUI(),
				h264test.NALU(0x68, 0xce, 0x3c, 0x80), h264test.Slice(true, 0))
		} else {
			stream = append(stream, h264test.Slice(false, 0, byte(i), 0x77)...)
		}
	}
	path := writeFile(t, "novui.h264", stream)
	for _, fps := range []float64{100, 0} {
		pub := newPublisher()
		run := start(t, mustNew(t, passthrough.Options{File: path, NoLoop: true, FPS: fps}), pub)
		if fps == 0 {
			// Default 30 fps: check the timestamps of a few frames only.
			frames := pub.wait(t, 3, 2*time.Second)
			run.stop(t)
			if frames[2].PTS != 2*time.Second/30 {
				t.Errorf("default FPS: frame 2 at %v", frames[2].PTS)
			}
			continue
		}
		err := run.result(t, 5*time.Second)
		if !errors.Is(err, io.EOF) {
			t.Fatal(err)
		}
		frames := pub.Frames()
		if len(frames) != 30 {
			t.Fatalf("%d frames, want 30", len(frames))
		}
		if frames[29].PTS != 290*time.Millisecond {
			t.Errorf("frame 29 at %v, want 290ms", frames[29].PTS)
		}
		if took := pub.times[29].Sub(pub.times[0]); took < 250*time.Millisecond {
			t.Errorf("30 frames at 100 fps took %v", took)
		}
	}
}

// TestFileTruncated cuts a file in the middle of a NAL unit: the complete
// access units before the cut are published byte-identical, the cut one
// never, whether the file is played once or looped.
func TestFileTruncated(t *testing.T) {
	stream := h264test.Stream{Rate: 100, Frames: 20, GOP: 5}
	_, data := encode(t, stream)
	aus := split(t, data)
	const k = 12 // cut inside access unit 12
	offset := 0
	for _, au := range aus[:k] {
		offset += len(au.Data)
	}
	path := writeFile(t, "cut.h264", data[:offset+len(aus[k].Data)/2])

	t.Run("once", func(t *testing.T) {
		pub := newPublisher()
		err := mustNew(t, passthrough.Options{File: path, NoLoop: true}).Run(context.Background(), pub)
		if !errors.Is(err, io.EOF) {
			t.Fatal(err)
		}
		frames := pub.Frames()
		if len(frames) != k {
			t.Fatalf("%d frames, want %d", len(frames), k)
		}
		for i, f := range frames {
			if !bytes.Equal(f.Data, aus[i].Data) {
				t.Fatalf("frame %d differs", i)
			}
		}
	})
	t.Run("loop", func(t *testing.T) {
		pub := newPublisher()
		run := start(t, mustNew(t, passthrough.Options{File: path}), pub)
		frames := pub.wait(t, 2*k+2, 5*time.Second)
		run.stop(t)
		for i, f := range frames {
			if !bytes.Equal(f.Data, aus[i%k].Data) {
				t.Fatalf("frame %d is not access unit %d", i, i%k)
			}
		}
	})
}

// TestNotH264 feeds files that are not H.264.
func TestNotH264(t *testing.T) {
	random := make([]byte, 256<<10)
	rng := rand.NewChaCha8([32]byte{1})
	rng.Read(random)
	img := image.NewRGBA(image.Rect(0, 0, 64, 64))
	for i := range 64 {
		img.Set(i, i, color.RGBA{R: 255, A: 255})
	}
	var pngData bytes.Buffer
	if err := png.Encode(&pngData, img); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"random": random,
		"png":    pngData.Bytes(),
		"text":   []byte(strings.Repeat("camd is not a video\n", 100)),
		"short":  []byte("hi"),
	} {
		t.Run(name, func(t *testing.T) {
			path := writeFile(t, name, data)
			err := mustNew(t, passthrough.Options{File: path}).Run(context.Background(), newPublisher())
			if !errors.Is(err, h264.ErrNotH264) || !strings.HasPrefix(err.Error(), "passthrough: file:") {
				t.Fatalf("Run: %v, want a passthrough error wrapping h264.ErrNotH264", err)
			}
		})
	}
}

func TestFileVanished(t *testing.T) {
	path := writeFile(t, "in.h264", []byte{0, 0, 0, 1})
	src := mustNew(t, passthrough.Options{File: path})
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	err := src.Run(context.Background(), newPublisher())
	if err == nil || !strings.HasPrefix(err.Error(), "passthrough: file:") || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Run: %v", err)
	}
}

// TestFileNoKeyframe: a file with frames but no keyframe publishes
// nothing and fails instead of spinning.
func TestFileNoKeyframe(t *testing.T) {
	p := h264test.Slice(false, 0)
	path := writeFile(t, "p.h264", h264test.Join([]byte{0, 0, 0, 1}, h264test.SPSNoVUI(), p, p, p, p))
	pub := newPublisher()
	err := mustNew(t, passthrough.Options{File: path}).Run(context.Background(), pub)
	if !errors.Is(err, passthrough.ErrNoKeyframe) || len(pub.Frames()) != 0 {
		t.Fatalf("Run: %v, %d frames", err, len(pub.Frames()))
	}
}

// TestKeyframesGetParamSets: an encoder that sends SPS and PPS only once
// still yields keyframes that decode alone, and a run that starts in the
// middle of a group of pictures waits for its first keyframe.
func TestKeyframesGetParamSets(t *testing.T) {
	stream := h264test.Stream{Rate: 100, Frames: 31, GOP: 10}
	_, data := encode(t, stream)
	aus := split(t, data)
	// Frames 3 to 29 (first keyframe at 10), with the stream's SPS and
	// PPS only once, after frame 3.
	var params []byte
	for _, n := range h264.NALUs(aus[0].Data) {
		if typ := n[0] & 0x1f; typ == 7 || typ == 8 {
			params = h264test.Join(params, []byte{0, 0, 0, 1}, n)
		}
	}
	var in []byte
	for i, au := range aus[3:] {
		for _, n := range h264.NALUs(au.Data) {
			if typ := n[0] & 0x1f; (typ == 7 || typ == 8) && i != 0 {
				continue
			}
			in = h264test.Join(in, []byte{0, 0, 0, 1}, n)
		}
		if i == 0 {
			in = append(in, params...)
		}
	}
	path := writeFile(t, "sparse.h264", in)
	pub := newPublisher()
	err := mustNew(t, passthrough.Options{File: path, NoLoop: true}).Run(context.Background(), pub)
	if !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	frames := pub.Frames()
	if len(frames) != 19 || !frames[0].Key || !frames[10].Key {
		t.Fatalf("%d frames (want 19 from frame 10 of the source), first key %v", len(frames), frames[0].Key)
	}
	for _, i := range []int{0, 10} {
		types := naluTypes(frames[i].Data)
		if len(types) < 3 || types[0] != 7 || types[1] != 8 {
			t.Fatalf("keyframe %d has NAL units %v, want SPS and PPS first", i, types)
		}
	}
	// A viewer joining at the second keyframe decodes every frame.
	joined := concat(frames[10:])
	if n := h264test.CountFrames(t, joined); n != len(frames)-10 {
		t.Fatalf("ffprobe decodes %d of %d frames from the second keyframe", n, len(frames)-10)
	}
	if msg := h264test.DecodeErrors(t, joined); msg != "" {
		t.Fatalf("decoding from the second keyframe: %s", msg)
	}
}

// TestWithHub runs a file through media.Supervise into a hub: a consumer
// starts at a keyframe.
func TestWithHub(t *testing.T) {
	path, _ := encode(t, h264test.Stream{Rate: 100, Frames: 20, GOP: 10})
	hub := media.NewHub(media.HubOptions{})
	defer hub.Close()
	c := hub.Subscribe(media.ConsumerOptions{Name: "test"})
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		media.Supervise(ctx, mustNew(t, passthrough.Options{File: path}), hub, media.SuperviseOptions{})
	}()
	defer func() { cancel(); <-done }()
	for i := range 25 {
		wctx, wcancel := context.WithTimeout(ctx, 2*time.Second)
		f, _, err := c.Next(wctx)
		wcancel()
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 && !f.Key {
			t.Fatal("first frame is not a keyframe")
		}
	}
	if hub.Info().Name != "file:"+path {
		t.Errorf("hub source %q", hub.Info().Name)
	}
}
