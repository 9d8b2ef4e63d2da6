package nvr

import (
	"testing"
	"time"

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
