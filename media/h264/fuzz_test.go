package h264_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/camd-project/camd/media/h264"
)

// FuzzSplitter checks that the splitter never panics, never returns more
// than it read, does not depend on how its input is chunked, and returns
// access units that split again into themselves; and that ParseSPS and
// ParamSets survive whatever it returns.
func FuzzSplitter(f *testing.F) {
	f.Add(join(sps, pps, sei, idr, p0, p0))
	f.Add(join(aud, sps, pps, idr, slice(true, 3), aud, p0, aud, p0))
	f.Add(join([]byte("junk"), sps[1:], []byte{0, 0}, pps, idr, nalu(0x0b)))
	f.Add(join(p0, idr, nalu(0x0a), p0, []byte{0, 0, 0, 1, 0x41}))
	f.Add(join(nalu(0x1f), nalu(0x80), sps))
	f.Add(join(sps[:8], []byte{0, 0, 3, 0, 0, 1}, pps))
	// testdata/fuzz/FuzzSplitter holds libx264 streams (h264test.Encode,
	// without its SEI banner: small inputs fuzz faster).
	f.Fuzz(func(t *testing.T, data []byte) {
		aus, stats, err := splitAll(bytes.NewReader(data))
		odd, _, oddErr := splitAll(&oddReader{b: data})
		if (err == nil) != (oddErr == nil) || (err != nil && err.Error() != oddErr.Error()) || len(aus) != len(odd) {
			t.Fatalf("chunking changed the result: %d, %v vs %d, %v", len(aus), err, len(odd), oddErr)
		}
		if err != io.EOF && !errors.Is(err, h264.ErrNotH264) && !errors.Is(err, h264.ErrNALUTooLarge) &&
			!errors.Is(err, h264.ErrAccessUnitTooLarge) {
			t.Fatalf("unexpected error %v", err)
		}
		if stats.Bytes > int64(len(data)) {
			t.Fatalf("read %d bytes of %d", stats.Bytes, len(data))
		}
		total := 0
		var all []byte
		var params h264.ParamSets
		for i, au := range aus {
			if !bytes.Equal(au.Data, odd[i].Data) || au.Key != odd[i].Key {
				t.Fatalf("access unit %d depends on chunking", i)
			}
			total += len(au.Data)
			if len(au.Data) > len(data) || total > len(data) {
				t.Fatalf("access units hold %d bytes of an input of %d", total, len(data))
			}
			if !bytes.HasPrefix(au.Data, []byte{0, 0, 1}) && !bytes.HasPrefix(au.Data, []byte{0, 0, 0, 1}) {
				t.Fatalf("access unit %d does not begin with a start code: % x", i, au.Data)
			}
			var key, hasSPS, hasPPS, vcl bool
			for _, n := range h264.NALUs(au.Data) {
				switch n[0] & 0x1f {
				case 1, 2, 3, 4:
					vcl = true
				case 5:
					vcl, key = true, true
				case 7:
					hasSPS = true
					if info, err := h264.ParseSPS(n); err == nil {
						if info.Width <= 0 || info.Height <= 0 || info.Width > 16384 || info.Height > 16384 {
							t.Fatalf("ParseSPS returned %+v", info)
						}
						_ = info.String()
					}
				case 8:
					hasPPS = true
				}
			}
			if !vcl || key != au.Key || hasSPS != au.HasSPS || hasPPS != au.HasPPS {
				t.Fatalf("access unit %d: flags %+v, contents vcl %v key %v sps %v pps %v", i, au, vcl, key, hasSPS, hasPPS)
			}
			c := params.Complete(au)
			if c.Key && c.HasSPS && c.HasPPS && params.SPS() == nil {
				t.Fatalf("completed keyframe without a known SPS")
			}
			all = append(all, au.Data...)
		}
		if len(aus) == 0 {
			return
		}
		// The access units split again into themselves: a delimiter proves
		// the last one complete.
		again, _, err := splitAll(bytes.NewReader(join(all, aud)))
		if err != io.EOF || len(again) != len(aus) {
			t.Fatalf("splitting the output again: %d access units, %v; want %d", len(again), err, len(aus))
		}
		for i := range again {
			if !bytes.Equal(again[i].Data, aus[i].Data) {
				t.Fatalf("access unit %d changed when split again:\n% x\n% x", i, again[i].Data, aus[i].Data)
			}
		}
	})
}
