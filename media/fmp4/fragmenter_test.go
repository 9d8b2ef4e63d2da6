package fmp4_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	mcfmp4 "github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"

	"github.com/camd-project/camd/internal/testenv"
	"github.com/camd-project/camd/media"
	"github.com/camd-project/camd/media/fmp4"
	"github.com/camd-project/camd/media/fmp4/fmp4test"
)

func cut(fr *fmp4.Fragmenter, frames []*media.Frame) []*fmp4.Fragment {
	var out []*fmp4.Fragment
	for _, f := range frames {
		if frag := fr.Push(f); frag != nil {
			out = append(out, frag)
		}
	}
	return out
}

func parse(t *testing.T, frag *fmp4.Fragment) *mcfmp4.Part {
	t.Helper()
	var parts mcfmp4.Parts
	if err := parts.Unmarshal(frag.Data); err != nil {
		t.Fatalf("fragment does not parse: %v", err)
	}
	if len(parts) != 1 {
		t.Fatalf("%d parts in one fragment", len(parts))
	}
	return parts[0]
}

func TestFragmentsStartOnKeyframesAndAreContinuous(t *testing.T) {
	start := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	src := &fmp4test.Source{FPS: 30, GOP: 27, Audio: true, Start: start}
	fr := fmp4.New(fmp4.Options{Target: 900 * time.Millisecond})
	frags := cut(fr, src.Frames(10*time.Second))
	if len(frags) < 9 || len(frags) > 12 {
		t.Fatalf("%d fragments from 10 s", len(frags))
	}
	if !frags[0].Start.Equal(start) {
		t.Errorf("first fragment starts at %v, want %v", frags[0].Start, start)
	}
	var init mcfmp4.Init
	if err := init.Unmarshal(bytes.NewReader(frags[0].Init.Data)); err != nil {
		t.Fatal(err)
	}
	if len(init.Tracks) != 2 || init.Tracks[0].TimeScale != fmp4.VideoTimescale || init.Tracks[1].TimeScale != fmp4.AudioTimescale {
		t.Fatalf("init tracks: %+v", init.Tracks)
	}
	var nextV, nextA uint64
	for i, f := range frags {
		if !f.Key {
			t.Errorf("fragment %d does not start on a keyframe", i)
		}
		if f.Init != frags[0].Init {
			t.Errorf("fragment %d has a new init segment without a change", i)
		}
		if i > 0 && !f.Start.Equal(frags[i-1].End()) {
			t.Errorf("fragment %d starts at %v, previous ends at %v", i, f.Start, frags[i-1].End())
		}
		p := parse(t, f)
		if p.SequenceNumber != uint32(i) {
			t.Errorf("fragment %d has sequence number %d", i, p.SequenceNumber)
		}
		var dv, da uint64
		for _, tr := range p.Tracks {
			sum := uint64(0)
			for _, s := range tr.Samples {
				sum += uint64(s.Duration)
			}
			switch tr.ID {
			case fmp4.VideoTrack:
				if i > 0 && tr.BaseTime != nextV {
					t.Errorf("fragment %d video tfdt %d, want %d", i, tr.BaseTime, nextV)
				}
				if tr.Samples[0].IsNonSyncSample || len(tr.Samples) != f.VideoFrames {
					t.Errorf("fragment %d: first sample not sync or count wrong", i)
				}
				nextV, dv = tr.BaseTime+sum, sum
			case fmp4.AudioTrack:
				if i > 0 && tr.BaseTime != nextA {
					t.Errorf("fragment %d audio tfdt %d, want %d", i, tr.BaseTime, nextA)
				}
				nextA, da = tr.BaseTime+sum, sum
			}
		}
		if got := time.Duration(dv) * time.Second / fmp4.VideoTimescale; absDur(got-f.Duration) > time.Millisecond {
			t.Errorf("fragment %d: video samples last %v, Duration %v", i, got, f.Duration)
		}
		if da == 0 {
			t.Errorf("fragment %d has no audio", i)
		}
	}
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

func TestWantsKeyframeOncePerFragmentJustInTime(t *testing.T) {
	// A GOP longer than the target: only requested keyframes end fragments.
	src := &fmp4test.Source{FPS: 30, GOP: 1000}
	fr := fmp4.New(fmp4.Options{Target: 900 * time.Millisecond})
	var frags []*fmp4.Fragment
	asked := 0
	forceNext := false
	for range 300 {
		frames := src.Frames(time.Second / 30)
		f := frames[0]
		if forceNext {
			f.Key = true // the encoder honoured the request
			forceNext = false
		}
		if frag := fr.Push(f); frag != nil {
			frags = append(frags, frag)
		}
		if fr.WantsKeyframe() {
			asked++
			forceNext = true
		}
	}
	if asked < 9 || asked > 11 {
		t.Fatalf("asked for %d keyframes in 10 s", asked)
	}
	for i, f := range frags {
		if !f.Key || f.Duration < 850*time.Millisecond || f.Duration > 950*time.Millisecond {
			t.Errorf("fragment %d: key %v, %v long", i, f.Key, f.Duration)
		}
	}
}

func TestLongGOPIsCutAtMax(t *testing.T) {
	src := &fmp4test.Source{FPS: 25, GOP: 75} // a keyframe every 3 s
	fr := fmp4.New(fmp4.Options{Target: time.Second})
	frags := cut(fr, src.Frames(9*time.Second))
	if len(frags) < 5 {
		t.Fatalf("%d fragments", len(frags))
	}
	for i, f := range frags {
		if f.Duration > 1500*time.Millisecond {
			t.Errorf("fragment %d lasts %v, more than Max", i, f.Duration)
		}
		if i > 0 && !f.Start.Equal(frags[i-1].End()) {
			t.Errorf("fragment %d not continuous", i)
		}
	}
	if !frags[0].Key || frags[1].Key {
		t.Errorf("keys: %v %v; want the cut continuation marked", frags[0].Key, frags[1].Key)
	}
}

func TestGapEndsFragment(t *testing.T) {
	src := &fmp4test.Source{FPS: 30, GOP: 15}
	fr := fmp4.New(fmp4.Options{})
	frames := src.Frames(2 * time.Second)
	src.Frames(3 * time.Second) // lost: the consumer fell behind
	frames = append(frames, src.Frames(2*time.Second)...)
	frags := cut(fr, frames)
	gaps := 0
	for i := 1; i < len(frags); i++ {
		if d := frags[i].Start.Sub(frags[i-1].End()); d > 0 {
			gaps++
			if d < 2900*time.Millisecond {
				t.Errorf("gap of %v, want about 3 s", d)
			}
		}
	}
	if gaps != 1 {
		t.Fatalf("%d gaps, want 1", gaps)
	}
}

func TestNothingBeforeTheFirstKeyframe(t *testing.T) {
	src := &fmp4test.Source{FPS: 30, GOP: 30, Audio: true}
	frames := src.Frames(3 * time.Second)
	fr := fmp4.New(fmp4.Options{})
	frags := cut(fr, frames[5:]) // starts mid-GOP
	if fr.Skipped() == 0 {
		t.Fatal("no frames skipped before the first keyframe")
	}
	if len(frags) == 0 || !frags[0].Key {
		t.Fatal("first fragment does not start on a keyframe")
	}
	if last := fr.Flush(); last == nil || last.Duration <= 0 {
		t.Fatal("Flush returned no fragment")
	}
	if fr.Flush() != nil {
		t.Fatal("second Flush returned a fragment")
	}
}

func TestRetime(t *testing.T) {
	src := &fmp4test.Source{Audio: true, Start: time.Unix(1_700_000_000, 0)}
	fr := fmp4.New(fmp4.Options{})
	frags := cut(fr, src.Frames(3*time.Second))
	data := bytes.Clone(frags[1].Data)
	before, err := fmp4.BaseTimes(data)
	if err != nil || len(before) != 2 {
		t.Fatalf("BaseTimes: %v %v", before, err)
	}
	err = fmp4.Retime(data, 7, func(track uint32) uint64 { return before[track] - uint64(track) })
	if err != nil {
		t.Fatal(err)
	}
	p := parse(t, &fmp4.Fragment{Data: data})
	if p.SequenceNumber != 7 {
		t.Errorf("sequence %d", p.SequenceNumber)
	}
	for _, tr := range p.Tracks {
		if tr.BaseTime != uint64(tr.ID) {
			t.Errorf("track %d base %d", tr.ID, tr.BaseTime)
		}
	}
	if len(data) != len(frags[1].Data) {
		t.Fatal("size changed")
	}
	if err := fmp4.Retime(data, 1, func(uint32) uint64 { return 1 << 40 }); err == nil {
		t.Fatal("a shift beyond the start was accepted")
	}
	for _, bad := range [][]byte{nil, []byte("garbage!"), data[:40], frags[0].Init.Data} {
		if _, err := fmp4.BaseTimes(bad); err == nil {
			t.Errorf("BaseTimes accepted %d bytes of non-fragment", len(bad))
		}
	}
}

func FuzzRetime(f *testing.F) {
	src := &fmp4test.Source{Audio: true}
	for _, frag := range cut(fmp4.New(fmp4.Options{}), src.Frames(2*time.Second)) {
		f.Add(frag.Data)
	}
	f.Add([]byte{0, 0, 0, 1, 'm', 'o', 'o', 'f', 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		fmp4.BaseTimes(b)
		fmp4.Retime(b, 1, func(uint32) uint64 { return 0 })
	})
}

// TestFFprobeReadsFragments writes init + fragments of real H.264 with
// audio and checks what ffprobe makes of the file.
func TestFFprobeReadsFragments(t *testing.T) {
	testenv.Tool(t, "ffprobe")
	src := &fmp4test.Source{FPS: 30, Audio: true, AUs: fmp4test.RealAUs(t, 30, 15, 2)}
	fr := fmp4.New(fmp4.Options{})
	frags := cut(fr, src.Frames(6*time.Second))
	if last := fr.Flush(); last != nil {
		frags = append(frags, last)
	}
	var file bytes.Buffer
	file.Write(frags[0].Init.Data)
	shift := map[uint32]uint64{}
	base, _ := fmp4.BaseTimes(frags[0].Data)
	shift[fmp4.VideoTrack] = base[fmp4.VideoTrack]
	shift[fmp4.AudioTrack] = base[fmp4.AudioTrack]
	for i, f := range frags {
		d := bytes.Clone(f.Data)
		if err := fmp4.Retime(d, uint32(i+1), func(tr uint32) uint64 { return shift[tr] }); err != nil {
			t.Fatal(err)
		}
		file.Write(d)
	}
	path := filepath.Join(t.TempDir(), "out.mp4")
	os.WriteFile(path, file.Bytes(), 0o600)
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_name,width,height:format=duration",
		"-of", "default=nw=1", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe: %v\n%s", err, out)
	}
	s := string(out)
	for _, want := range []string{"codec_name=h264", "codec_name=opus", "width=320", "height=240"} {
		if !strings.Contains(s, want) {
			t.Errorf("ffprobe output lacks %q:\n%s", want, s)
		}
	}
	i := strings.Index(s, "duration=")
	d, _ := strconv.ParseFloat(strings.TrimSpace(strings.SplitN(s[i+9:], "\n", 2)[0]), 64)
	if d < 5.5 || d > 6.5 {
		t.Errorf("duration %.2f s, want about 6\n%s", d, s)
	}
	dec, err := exec.Command("ffmpeg", "-v", "error", "-i", path, "-map", "0:v", "-f", "null", "-").CombinedOutput()
	if err != nil || len(bytes.TrimSpace(dec)) > 0 {
		t.Errorf("video does not decode cleanly: %v\n%s", err, dec)
	}
}
