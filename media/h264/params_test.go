package h264_test

import (
	"bytes"
	"testing"

	"github.com/camd-project/camd/media/h264"
	"github.com/camd-project/camd/media/h264/h264test"
)

func TestParamSets(t *testing.T) {
	var p h264.ParamSets
	// A keyframe before any parameter set cannot be completed.
	lone := h264.AccessUnit{Data: join(idr), Key: true}
	if got := p.Complete(lone); !bytes.Equal(got.Data, lone.Data) || got.HasSPS || got.HasPPS {
		t.Fatalf("keyframe without known parameter sets: %+v", got)
	}
	first := h264.AccessUnit{Data: join(aud, sps[1:], pps, sei, idr), Key: true, HasSPS: true, HasPPS: true}
	if got := p.Complete(first); !bytes.Equal(got.Data, first.Data) {
		t.Fatalf("complete keyframe changed: % x", got.Data)
	}
	if !bytes.Equal(p.SPS(), sps[4:]) {
		t.Fatalf("SPS() = % x", p.SPS())
	}

	tests := []struct {
		name string
		in   h264.AccessUnit
		want []byte
	}{
		{
			name: "non-key access unit untouched",
			in:   h264.AccessUnit{Data: join(aud, p0)},
			want: join(aud, p0),
		},
		{
			name: "keyframe gets both, after its delimiter",
			in:   h264.AccessUnit{Data: join(aud, sei[1:], idr, slice(true, 10)), Key: true},
			want: join(aud, sps, pps, sei, idr, slice(true, 10)),
		},
		{
			name: "keyframe with its SPS gets the PPS after it",
			in:   h264.AccessUnit{Data: join(sps, sei, idr), Key: true, HasSPS: true},
			want: join(sps, pps, sei, idr),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orig := bytes.Clone(tt.in.Data)
			got := p.Complete(tt.in)
			if !bytes.Equal(got.Data, tt.want) {
				t.Errorf("\n got % x\nwant % x", got.Data, tt.want)
			}
			if !bytes.Equal(tt.in.Data, orig) {
				t.Error("input modified")
			}
			if tt.in.Key && (!got.HasSPS || !got.HasPPS) {
				t.Errorf("HasSPS, HasPPS = %v, %v", got.HasSPS, got.HasPPS)
			}
		})
	}

	// A new SPS replaces the old one.
	other := join([]byte{0, 0, 0, 1}, h264test.SPSNoVUI())
	p.Complete(h264.AccessUnit{Data: join(other, idr), Key: true, HasSPS: true})
	got := p.Complete(h264.AccessUnit{Data: idr, Key: true})
	if want := join(other, pps, idr); !bytes.Equal(got.Data, want) {
		t.Errorf("after a new SPS:\n got % x\nwant % x", got.Data, want)
	}
}

func TestJoinMarksWhatTheNALUnitsAre(t *testing.T) {
	// h264test makes NAL units behind start codes; Join takes them bare.
	bare := func(b []byte) []byte { return h264.NALUs(b)[0] }
	sps := bare(h264test.NALU(0x67, h264test.BaselineSPS(320, 240)[1:]...))
	pps := bare(h264test.NALU(0x68, 0xce, 0x3c, 0x80))
	idr := bare(h264test.Slice(true, 0, 1, 2))
	p := bare(h264test.Slice(false, 0, 3, 4))
	for _, c := range []struct {
		name          string
		nalus         [][]byte
		key, sps, pps bool
	}{
		{"keyframe with its sets", [][]byte{sps, pps, idr}, true, true, true},
		{"bare keyframe", [][]byte{idr}, true, false, false},
		{"picture", [][]byte{p, {}}, false, false, false},
	} {
		au := h264.Join(c.nalus)
		if au.Key != c.key || au.HasSPS != c.sps || au.HasPPS != c.pps {
			t.Errorf("%s: %+v", c.name, au)
		}
		var want []byte
		for _, n := range c.nalus {
			if len(n) > 0 {
				want = append(append(want, 0, 0, 0, 1), n...)
			}
		}
		if !bytes.Equal(au.Data, want) {
			t.Errorf("%s: data % x, want % x", c.name, au.Data, want)
		}
	}
}
