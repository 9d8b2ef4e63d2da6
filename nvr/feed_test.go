package nvr

import (
	"context"
	"errors"
	"testing"
	"time"

	mch264 "github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"

	"github.com/camd-project/camd/media"
	"github.com/camd-project/camd/media/h264/h264test"
)

func TestPlausible(t *testing.T) {
	sps, pps := h264test.SPS320x240(), h264test.PPS320x240()
	idr, p := h264test.Slice(true, 0, 1, 2, 3)[4:], h264test.Slice(false, 0, 1, 2)[4:]
	for _, tc := range []struct {
		name  string
		nalus [][]byte
		ok    bool
	}{
		{"idr with params", [][]byte{sps, pps, idr}, true},
		{"p slice", [][]byte{p}, true},
		{"aud sei slice", [][]byte{{0x09, 0xf0}, {0x06, 0x05, 0x00}, p}, true},
		{"no slice", [][]byte{sps, pps}, false},
		{"forbidden bit", [][]byte{{0x80 | 0x01, 1, 2}}, false},
		{"idr not a reference", [][]byte{{0x05, 0x88}}, false},
		{"reserved type", [][]byte{{0x17, 1}}, false},
		{"stap-a type", [][]byte{{0x18, 1}}, false},
		{"empty unit", [][]byte{{}}, false},
		{"nothing", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := plausible(tc.nalus); got != tc.ok {
				t.Fatalf("plausible = %v", got)
			}
		})
	}
}

func TestParamsCompleteIDR(t *testing.T) {
	sps, pps := h264test.SPS320x240(), h264test.PPS320x240()
	idr, p := h264test.Slice(true, 0, 1)[4:], h264test.Slice(false, 0, 1)[4:]
	var ps params
	if au, key, _ := ps.complete([][]byte{idr}); au != nil || key {
		t.Fatalf("an IDR before any parameter set: %x %v", au, key)
	}
	if au, key, changed := ps.complete([][]byte{sps, pps, idr}); len(au) != 3 || !key || changed {
		t.Fatalf("complete IDR: %d %v %v", len(au), key, changed)
	}
	au, key, changed := ps.complete([][]byte{idr})
	if len(au) != 3 || !key || !changed || au[0][0]&0x1f != 7 || au[1][0]&0x1f != 8 {
		t.Fatalf("IDR alone: %x %v %v", au, key, changed)
	}
	if au, key, changed := ps.complete([][]byte{p}); len(au) != 1 || key || changed {
		t.Fatalf("P slice: %d %v %v", len(au), key, changed)
	}
}

func TestClockUnwraps(t *testing.T) {
	c := clock{rate: 90000}
	if d := c.at(0xffffffff - 8999); d != 0 {
		t.Fatal(d)
	}
	if d := c.at(0); d != 100*time.Millisecond {
		t.Fatalf("across the wrap: %s", d)
	}
	if d := c.at(9000); d != 200*time.Millisecond {
		t.Fatalf("across the wrap: %s", d)
	}
}

// FuzzFeedVideo feeds arbitrary bytes, as a camera's access unit, through
// the checks and the parameter sets: nothing panics, a keyframe always
// carries an SPS, a PPS and an IDR, and the hub gets only what passed.
func FuzzFeedVideo(f *testing.F) {
	sps, pps := h264test.SPS320x240(), h264test.PPS320x240()
	f.Add(h264test.Join([]byte{0, 0, 0, 1}, sps, []byte{0, 0, 0, 1}, pps, h264test.Slice(true, 0)))
	f.Add(h264test.Slice(false, 0))
	f.Add([]byte{0, 0, 1, 0x65, 0x88, 0, 0, 1})
	f.Add([]byte{0xff, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, au []byte) {
		hub := media.NewHub(media.HubOptions{})
		defer hub.Close()
		c := hub.Subscribe(media.ConsumerOptions{})
		fd := newFeed(hub, "fuzz", false, func() {}, func(error) {})
		fd.params = params{sps: sps, pps: pps}
		fd.videoAnnexB(au, 3000, false)
		for c.Len() > 0 {
			fr, _, err := c.Next(context.Background())
			if err != nil {
				return
			}
			var nalus mch264.AnnexB
			if err := nalus.Unmarshal(fr.Data); err != nil || !plausible(nalus) {
				t.Fatalf("published what is not H.264: %x", fr.Data)
			}
			if fr.Key {
				seen := map[mch264.NALUType]bool{}
				for _, n := range nalus {
					seen[mch264.NALUType(n[0]&0x1f)] = true
				}
				if !seen[mch264.NALUTypeSPS] || !seen[mch264.NALUTypePPS] || !seen[mch264.NALUTypeIDR] {
					t.Fatalf("a keyframe without its parameter sets: %x", fr.Data)
				}
			}
		}
	})
}

func TestBFrame(t *testing.T) {
	sps, pps := h264test.SPS320x240(), h264test.PPS320x240()
	idr, p := h264test.Slice(true, 0, 1, 2, 3)[4:], h264test.Slice(false, 0, 1, 2)[4:]
	for _, tc := range []struct {
		name  string
		nalus [][]byte
		b     bool
	}{
		{"idr", [][]byte{sps, pps, idr}, false},
		{"p slice", [][]byte{p}, false},
		// first_mb_in_slice 0 ("1"), then slice_type: 1 ("010"), 6
		// ("00111"), 0 ("1"), 2 ("011"), 7 ("0001000").
		{"b slice", [][]byte{{0x01, 0xa8, 0x11}}, true},
		{"b slice, all of the picture", [][]byte{{0x21, 0x9e, 0x11}}, true},
		{"p slice by hand", [][]byte{{0x41, 0xc0, 0x11}}, false},
		{"i slice", [][]byte{{0x41, 0xb0, 0x11}}, false},
		{"i slice, all of the picture", [][]byte{{0x41, 0x88, 0x11}}, false},
		{"b slice after an aud and a p slice", [][]byte{{0x09, 0xf0}, p, {0x01, 0xa8}}, true},
		{"header cut short", [][]byte{{0x01, 0x00}}, false},
		{"no header", [][]byte{{0x01}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := bFrame(tc.nalus); got != tc.b {
				t.Fatalf("bFrame = %v", got)
			}
		})
	}
}

// A pull fails with ErrBFrames at the first B slice, and publishes
// nothing of it.
func TestFeedRefusesBFrames(t *testing.T) {
	hub := media.NewHub(media.HubOptions{})
	defer hub.Close()
	failed := make(chan error, 1)
	f := newFeed(hub, "test", false, func() {}, func(err error) { failed <- err })
	sps, pps := h264test.SPS320x240(), h264test.PPS320x240()
	idr := h264test.Slice(true, 0, 1, 2, 3)[4:]
	f.video([][]byte{sps, pps, idr}, nil, 0)
	f.video([][]byte{{0x01, 0xa8, 0x11}}, nil, 3000)
	select {
	case err := <-failed:
		if !errors.Is(err, ErrBFrames) || !errors.Is(err, ErrNoVideo) {
			t.Fatalf("failed with %v", err)
		}
	default:
		t.Fatal("a B slice was taken")
	}
}

// FuzzBFrame: any NAL unit is read without a panic, and a B slice is
// never an IDR.
func FuzzBFrame(f *testing.F) {
	f.Add([]byte{0x01, 0xa8, 0x11})
	f.Add([]byte{0x41, 0x88})
	f.Fuzz(func(t *testing.T, n []byte) {
		if bFrame([][]byte{n}) && n[0]&0x1f != 1 {
			t.Fatalf("a B slice in NAL unit type %d", n[0]&0x1f)
		}
	})
}
