package encoder

import (
	"bytes"
	"fmt"
	"testing"
)

func TestNALUnits(t *testing.T) {
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
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := NALUnits(tt.in)
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("NALUnits = %x, want %x", got, tt.want)
			}
		})
	}
}

func TestHasIDR(t *testing.T) {
	idr := []byte{0, 0, 0, 1, 0x67, 1, 0, 0, 0, 1, 0x68, 2, 0, 0, 0, 1, 0x65, 3}
	p := []byte{0, 0, 0, 1, 0x41, 3}
	// A 0x65 byte inside a P slice is not an IDR.
	tricky := []byte{0, 0, 0, 1, 0x41, 0x65, 0x25}
	if !HasIDR(idr) || HasIDR(p) || HasIDR(tricky) || HasIDR(nil) {
		t.Error("HasIDR got a case wrong")
	}
}

func TestWithParameterSets(t *testing.T) {
	sps, pps := []byte{0x67, 1}, []byte{0x68, 2}
	bare := []byte{0, 0, 0, 1, 0x65, 3}
	got := withParameterSets(bare, NALUnits(bare), sps, pps)
	want := []byte{0, 0, 0, 1, 0x67, 1, 0, 0, 0, 1, 0x68, 2, 0, 0, 0, 1, 0x65, 3}
	if !bytes.Equal(got, want) {
		t.Errorf("prepended = %x, want %x", got, want)
	}
	if got := withParameterSets(want, NALUnits(want), sps, pps); !bytes.Equal(got, want) {
		t.Errorf("an IDR with its own SPS/PPS changed: %x", got)
	}
	if got := withParameterSets(bare, NALUnits(bare), nil, nil); !bytes.Equal(got, bare) {
		t.Errorf("without known SPS/PPS the unit changed: %x", got)
	}
}

func FuzzNALUnits(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 0x67, 1, 0, 0, 1, 0x65, 2})
	f.Add([]byte{0, 0, 1})
	f.Add([]byte{0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		total := 0
		for _, n := range NALUnits(b) {
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
		_ = HasIDR(b)
	})
}
