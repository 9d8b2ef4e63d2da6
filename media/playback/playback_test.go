package playback

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/camd-project/camd/media"
	"github.com/camd-project/camd/media/fmp4"
	"github.com/camd-project/camd/media/fmp4/fmp4test"
	"github.com/camd-project/camd/media/h264"
	"github.com/camd-project/camd/media/h264/h264test"
)

// recording is 3 s of video (30 fps, a keyframe a second) and audio as
// a fragmented MP4: the init segment, then the fragments.
func recording(t testing.TB) []byte { return recordingOf(t, 3*time.Second, 0) }

// recordingOf is d of recording with pictures of frameBytes (0: 800).
func recordingOf(t testing.TB, d time.Duration, frameBytes int) []byte {
	t.Helper()
	src := &fmp4test.Source{FPS: 30, GOP: 30, Audio: true, FrameBytes: frameBytes, Start: time.Date(2025, 6, 1, 8, 0, 0, 0, time.UTC)}
	fr := fmp4.New(fmp4.Options{})
	var out []byte
	add := func(f *fmp4.Fragment) {
		if f == nil {
			return
		}
		if out == nil {
			out = append(out, f.Init.Data...)
		}
		out = append(out, f.Data...)
	}
	for _, f := range src.Frames(d) {
		add(fr.Push(f))
	}
	add(fr.Flush())
	return out
}

// drain collects what a consumer got until nothing comes for a while.
func drain(c *media.Consumer) []*media.Frame {
	var got []*media.Frame
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		f, _, err := c.Next(ctx)
		cancel()
		if err != nil {
			return got
		}
		got = append(got, f)
	}
}

func TestPlayPublishesEveryFrameInOrder(t *testing.T) {
	h := media.NewHub(media.HubOptions{QueueFrames: 1024})
	c := h.Subscribe(media.ConsumerOptions{})
	st, err := Play(context.Background(), bytes.NewReader(recording(t)), h, Options{Unpaced: true})
	if err != nil {
		t.Fatal(err)
	}
	if st.Video != 90 || st.Audio != 150 || st.Keyframes != 3 {
		t.Fatalf("published %+v, want 90 pictures (3 keyframes) and 150 audio packets", st)
	}
	got := drain(c)
	if len(got) != 240 || !got[0].Key || got[0].PTS != 0 {
		t.Fatalf("consumer got %d frames, first %+v", len(got), got[0])
	}
	// A keyframe is Annex-B with its parameter sets in front.
	if !bytes.HasPrefix(got[0].Data, []byte{0, 0, 0, 1, 0x67}) {
		t.Errorf("keyframe starts % x, want an SPS", got[0].Data[:8])
	}
	var last time.Duration
	for i, f := range got {
		if f.PTS < last {
			t.Fatalf("frame %d at %v after %v", i, f.PTS, last)
		}
		last = f.PTS
	}
	if last < 2900*time.Millisecond || last > 3*time.Second {
		t.Errorf("last frame at %v, want just under 3 s", last)
	}
}

// A keyframe recorded without its parameter sets (a camera that sends
// them once) is played with the init segment's in front.
func TestPlayPutsParameterSetsBeforeEveryKeyframe(t *testing.T) {
	sps := h264test.NALU(0x67, h264test.BaselineSPS(320, 240)[1:]...)
	pps := h264test.NALU(0x68, 0xce, 0x3c, 0x80)
	idr := h264test.Slice(true, 0, 1, 2, 3)
	p := h264.AccessUnit{Data: h264test.Slice(false, 0, 4, 5, 6)}
	aus := []h264.AccessUnit{{Data: h264test.Join(sps, pps, idr), Key: true, HasSPS: true, HasPPS: true}}
	for range 29 {
		aus = append(aus, p)
	}
	aus = append(aus, h264.AccessUnit{Data: idr, Key: true})
	for range 29 {
		aus = append(aus, p)
	}
	src := &fmp4test.Source{FPS: 30, AUs: aus, Start: time.Date(2025, 6, 1, 8, 0, 0, 0, time.UTC)}
	fr := fmp4.New(fmp4.Options{})
	var rec []byte
	for _, f := range append(src.Frames(2*time.Second), nil) {
		var frag *fmp4.Fragment
		if f == nil {
			frag = fr.Flush()
		} else {
			frag = fr.Push(f)
		}
		if frag != nil {
			if rec == nil {
				rec = append(rec, frag.Init.Data...)
			}
			rec = append(rec, frag.Data...)
		}
	}
	h := media.NewHub(media.HubOptions{QueueFrames: 1024})
	c := h.Subscribe(media.ConsumerOptions{})
	if _, err := Play(context.Background(), bytes.NewReader(rec), h, Options{Unpaced: true}); err != nil {
		t.Fatal(err)
	}
	keys := 0
	for _, f := range drain(c) {
		if f.Key {
			keys++
			if !bytes.HasPrefix(f.Data, []byte{0, 0, 0, 1, 0x67}) || !bytes.Contains(f.Data, []byte{0, 0, 0, 1, 0x68}) {
				t.Errorf("keyframe %d at %v starts % x: no SPS and PPS", keys, f.PTS, f.Data[:min(8, len(f.Data))])
			}
		}
	}
	if keys != 2 {
		t.Fatalf("%d keyframes played, want 2", keys)
	}
}

func TestPlayIsPacedAndStops(t *testing.T) {
	h := media.NewHub(media.HubOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	st, err := Play(ctx, bytes.NewReader(recording(t)), h, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("a cancelled playback took %v", took)
	}
	// Half a second of 30 fps: about 15 pictures, surely not all 90.
	if st.Video < 5 || st.Video > 30 {
		t.Fatalf("published %d pictures in 0.5 s", st.Video)
	}
}

func TestPlayRefusesWhatIsNotARecording(t *testing.T) {
	good := recording(t)
	for name, in := range map[string][]byte{
		"empty":        nil,
		"text":         []byte("hello, this is not an MP4 file at all"),
		"init only":    good[:bytes.Index(good, []byte("moof"))-4],
		"huge box":     {0x7f, 0xff, 0xff, 0xff, 'f', 't', 'y', 'p'},
		"tiny box":     {0, 0, 0, 4, 'f', 't', 'y', 'p'},
		"cut fragment": good[:len(good)-100],
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Play(context.Background(), bytes.NewReader(in), media.NewHub(media.HubOptions{}), Options{Unpaced: true})
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("err = %v, want ErrFormat", err)
			}
		})
	}
}

// FuzzPlay: no input crashes or hangs playback.
func FuzzPlay(f *testing.F) {
	// Small seeds: the fuzzer crawls on inputs of 100 KB.
	good := recordingOf(f, 1500*time.Millisecond, 16)
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte{0, 0, 0, 8, 'm', 'o', 'o', 'f', 0, 0, 0, 8, 'm', 'd', 'a', 't'})
	f.Fuzz(func(t *testing.T, in []byte) {
		Play(context.Background(), bytes.NewReader(in), media.NewHub(media.HubOptions{}), Options{Unpaced: true})
	})
}
