package h264_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/camd-project/camd/media/h264"
)

func TestNALUs(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want [][]byte
	}{
		{"empty", nil, nil},
		{"no start code", []byte{1, 2, 3, 4}, nil},
		{"4-byte start codes", []byte{0, 0, 0, 1, 0x67, 1, 2, 0, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 4, 5},
			[][]byte{{0x67, 1, 2}, {0x68, 3}, {0x65, 4, 5}}},
		{"3-byte start codes", []byte{0, 0, 1, 0x41, 9, 0, 0, 1, 0x41, 8},
			[][]byte{{0x41, 9}, {0x41, 8}}},
		{"garbage first, trailing zeros", []byte{7, 7, 0, 0, 1, 0x65, 1, 0, 0},
			[][]byte{{0x65, 1}}},
		{"emulation prevention kept", []byte{0, 0, 1, 0x65, 0, 0, 3, 1, 2},
			[][]byte{{0x65, 0, 0, 3, 1, 2}}},
		{"empty units dropped", []byte{0, 0, 1, 0, 0, 1, 0x09, 0xf0},
			[][]byte{{0x09, 0xf0}}},
		{"start code alone", []byte{0, 0, 0, 1}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := h264.NALUs(tt.in)
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("NALUs = %x, want %x", got, tt.want)
			}
		})
	}
}

func TestDescribe(t *testing.T) {
	tests := []struct {
		name          string
		in            []byte
		key, sps, pps bool
	}{
		{"keyframe with its sets", join(sps, pps, idr), true, true, true},
		{"bare keyframe", join(aud, idr), true, false, false},
		{"picture", []byte{0, 0, 0, 1, 0x41, 3}, false, false, false},
		// A 0x65 byte inside a P slice is not an IDR.
		{"IDR type byte inside a slice", []byte{0, 0, 0, 1, 0x41, 0x65, 0x25}, false, false, false},
		{"parameter sets alone", join(sps, pps), false, true, true},
		{"nothing", nil, false, false, false},
	}
	for _, tt := range tests {
		au := h264.Describe(tt.in)
		if au.Key != tt.key || au.HasSPS != tt.sps || au.HasPPS != tt.pps {
			t.Errorf("%s: Key, HasSPS, HasPPS = %v, %v, %v; want %v, %v, %v",
				tt.name, au.Key, au.HasSPS, au.HasPPS, tt.key, tt.sps, tt.pps)
		}
		if !bytes.Equal(au.Data, tt.in) {
			t.Errorf("%s: Data changed to % x", tt.name, au.Data)
		}
	}
}

// FuzzNALUs checks that the NAL units of any input are non-empty, hold no
// start code and no trailing zero, and together are no larger than it,
// and that EachNALU's bounds are in order and within it.
func FuzzNALUs(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 0x67, 1, 0, 0, 1, 0x65, 2})
	f.Add([]byte{0, 0, 1})
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0, 0, 1, 0, 0, 1, 0, 0, 1, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		total := 0
		for _, n := range h264.NALUs(b) {
			if len(n) == 0 || n[len(n)-1] == 0 {
				t.Fatalf("unit %x is empty or keeps a trailing zero", n)
			}
			if bytes.Contains(n, []byte{0, 0, 1}) {
				t.Fatalf("unit %x holds a start code", n)
			}
			total += len(n)
		}
		if total > len(b) {
			t.Fatalf("units hold %d bytes of %d", total, len(b))
		}
		last := 0
		h264.EachNALU(b, func(off, end int) {
			if off < last || end < off || end > len(b) {
				t.Fatalf("unit [%d:%d] after %d in %d bytes", off, end, last, len(b))
			}
			last = end
		})
		_ = h264.Describe(b)
	})
}
