package h264_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"testing"
	"testing/iotest"

	"github.com/camd-project/camd/media/h264"
	"github.com/camd-project/camd/media/h264/h264test"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	nalu  = h264test.NALU
	slice = h264test.Slice
	join  = h264test.Join
	sps   = join([]byte{0, 0, 0, 1}, h264test.SPS320x240())
	pps   = join([]byte{0, 0, 0, 1}, h264test.PPS320x240())
	aud   = nalu(0x09, 0xf0)
	sei   = nalu(0x06, 0x05, 0x01, 0x42, 0x80)
	idr   = slice(true, 0)
	p0    = slice(false, 0)
)

// splitAll runs a splitter to its end.
func splitAll(r io.Reader) ([]h264.AccessUnit, h264.SplitterStats, error) {
	s := h264.NewSplitter(r)
	var aus []h264.AccessUnit
	for {
		au, err := s.Next()
		if err != nil {
			if again, err2 := s.Next(); err2 != err || again.Data != nil {
				panic(fmt.Sprintf("Next after %v returned %v, %v", err, again, err2))
			}
			return aus, s.Stats(), err
		}
		aus = append(aus, au)
	}
}

// chunkings feed the same bytes in different pieces: the splitter's
// output must not depend on how its reads are cut.
var chunkings = map[string]func([]byte) io.Reader{
	"whole":   func(b []byte) io.Reader { return bytes.NewReader(b) },
	"1byte":   func(b []byte) io.Reader { return iotest.OneByteReader(bytes.NewReader(b)) },
	"half":    func(b []byte) io.Reader { return iotest.HalfReader(bytes.NewReader(b)) },
	"dataerr": func(b []byte) io.Reader { return iotest.DataErrReader(bytes.NewReader(b)) },
	"odd":     func(b []byte) io.Reader { return &oddReader{b: b} },
}

// oddReader returns chunks of 1, 2, 3, 5, 7, 11 and 13 bytes in turn, and
// sometimes (0, nil).
type oddReader struct {
	b []byte
	i int
}

func (r *oddReader) Read(p []byte) (int, error) {
	sizes := []int{1, 2, 0, 3, 5, 7, 11, 13}
	n := sizes[r.i%len(sizes)]
	r.i++
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n = min(n, len(p), len(r.b))
	copy(p, r.b[:n])
	r.b = r.b[n:]
	return n, nil
}

func TestSplitter(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		want    [][]byte // access units
		keys    []bool
		dropped int
		err     error
	}{
		{
			name: "parameter sets and SEI start an access unit",
			in:   join(sps, pps, sei, idr, p0, sei, p0, p0),
			want: [][]byte{join(sps, pps, sei, idr), p0, join(sei, p0)},
			keys: []bool{true, false, false}, dropped: len(p0),
		},
		{
			name: "access unit delimiters",
			in:   join(aud, sps, pps, idr, aud, p0, aud, p0),
			want: [][]byte{join(aud, sps, pps, idr), join(aud, p0)},
			keys: []bool{true, false}, dropped: len(aud) + len(p0),
		},
		{
			name: "slices of one picture stay together",
			in:   join(sps, pps, idr, slice(true, 40), slice(true, 80), p0, slice(false, 60), p0),
			want: [][]byte{join(sps, pps, idr, slice(true, 40), slice(true, 80)), join(p0, slice(false, 60))},
			keys: []bool{true, false}, dropped: len(p0),
		},
		{
			name: "3-byte start codes and junk before the first are kept and skipped",
			in:   join([]byte("junk"), sps[1:], pps, idr[1:], p0[1:], p0),
			want: [][]byte{join(sps[1:], pps, idr[1:]), p0[1:]},
			keys: []bool{true, false}, dropped: len(p0),
		},
		{
			name: "trailing zero bytes are stripped",
			in:   join(sps, []byte{0, 0, 0}, pps, idr, []byte{0, 0, 0, 0, 0}, p0, []byte{0, 0}),
			want: [][]byte{join(sps, pps, idr)},
			keys: []bool{true}, dropped: len(p0),
		},
		{
			name: "end of stream proves the last access unit complete",
			in:   join(sps, pps, idr, p0, nalu(0x0b), []byte{0}),
			want: [][]byte{join(sps, pps, idr), join(p0, nalu(0x0b))},
			keys: []bool{true, false},
		},
		{
			name: "end of sequence ends an access unit",
			in:   join(sps, pps, idr, nalu(0x0a), idr, slice(true, 5), p0),
			want: [][]byte{join(sps, pps, idr, nalu(0x0a)), join(idr, slice(true, 5))},
			keys: []bool{true, true}, dropped: len(p0),
		},
		{
			name: "a cut header still proves the previous access unit complete",
			in:   join(sps, pps, idr, p0, []byte{0, 0, 0, 1, 0x09}),
			want: [][]byte{join(sps, pps, idr), p0},
			keys: []bool{true, false}, dropped: 5,
		},
		{
			name: "a cut slice header leaves the previous access unit unproven",
			in:   join(sps, pps, idr, p0, []byte{0, 0, 0, 1, 0x41}),
			want: [][]byte{join(sps, pps, idr)},
			keys: []bool{true}, dropped: len(p0) + 5,
		},
		{
			name: "a cut start code",
			in:   join(sps, pps, idr, p0, []byte{0, 0}),
			want: [][]byte{join(sps, pps, idr)},
			keys: []bool{true}, dropped: len(p0),
		},
		{
			name: "empty NAL units are skipped",
			in:   join(sps, []byte{0, 0, 1}, pps, idr, p0, p0),
			want: [][]byte{join(sps, pps, idr), p0},
			keys: []bool{true, false}, dropped: len(p0),
		},
		{
			name: "a stream without parameter sets is still split",
			in:   join(p0, p0, p0),
			want: [][]byte{p0, p0},
			keys: []bool{false, false}, dropped: len(p0),
		},
		{name: "empty input", in: nil, err: io.EOF},
		{name: "zeros only", in: make([]byte, 100), err: h264.ErrNotH264},
		{name: "text", in: []byte("hello, this is not a video\n"), err: h264.ErrNotH264},
		{name: "forbidden bit", in: join(nalu(0xe7, 1, 2, 3), sps, pps, idr, p0), err: h264.ErrNotH264},
		{name: "unspecified types", in: join(nalu(0x1f, 1), nalu(0x00, 1), aud, sps, pps, idr, p0), err: h264.ErrNotH264},
		{name: "ends before any SPS", in: join(aud, []byte{1, 2, 3}), err: h264.ErrNotH264},
		{
			name: "no start code in the first 64 KiB",
			in:   join(bytes.Repeat([]byte{0xff}, h264.SyncLimit), sps, pps, idr, p0),
			err:  h264.ErrNotH264,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for cname, chunk := range chunkings {
				aus, stats, err := splitAll(chunk(tt.in))
				if tt.err == nil {
					tt.err = io.EOF
				}
				if !errors.Is(err, tt.err) {
					t.Fatalf("%s: err = %v, want %v", cname, err, tt.err)
				}
				if len(aus) != len(tt.want) {
					t.Fatalf("%s: %d access units, want %d", cname, len(aus), len(tt.want))
				}
				for i, au := range aus {
					if !bytes.Equal(au.Data, tt.want[i]) {
						t.Errorf("%s: access unit %d\n got % x\nwant % x", cname, i, au.Data, tt.want[i])
					}
					if au.Key != tt.keys[i] {
						t.Errorf("%s: access unit %d Key = %v", cname, i, au.Key)
					}
					hasSPS := bytes.Contains(au.Data, h264test.SPS320x240())
					hasPPS := bytes.Contains(au.Data, h264test.PPS320x240())
					if au.HasSPS != hasSPS || au.HasPPS != hasPPS {
						t.Errorf("%s: access unit %d HasSPS, HasPPS = %v, %v; want %v, %v", cname, i, au.HasSPS, au.HasPPS, hasSPS, hasPPS)
					}
				}
				if err == io.EOF && stats.DroppedTail != tt.dropped {
					t.Errorf("%s: DroppedTail = %d, want %d", cname, stats.DroppedTail, tt.dropped)
				}
				if stats.Bytes != int64(len(tt.in)) && err == io.EOF {
					t.Errorf("%s: read %d bytes of %d", cname, stats.Bytes, len(tt.in))
				}
				if stats.AccessUnits != int64(len(aus)) {
					t.Errorf("%s: stats count %d access units, Next returned %d", cname, stats.AccessUnits, len(aus))
				}
			}
		})
	}
}

func TestSplitterSkipped(t *testing.T) {
	_, stats, _ := splitAll(bytes.NewReader(join([]byte("junk\x00"), sps, pps, idr, p0)))
	if stats.Skipped != 5 {
		t.Errorf("Skipped = %d, want 5 (\"junk\" and a leading zero; the next zero belongs to the start code)", stats.Skipped)
	}
}

func TestSplitterLimits(t *testing.T) {
	t.Run("NAL unit", func(t *testing.T) {
		big := io.MultiReader(bytes.NewReader(join(sps, pps, idr)), endless(0x5a))
		_, _, err := splitAll(big)
		if !errors.Is(err, h264.ErrNALUTooLarge) || errors.Is(err, h264.ErrNotH264) {
			t.Fatalf("err = %v, want ErrNALUTooLarge only", err)
		}
	})
	t.Run("NAL unit before any SPS", func(t *testing.T) {
		_, _, err := splitAll(io.MultiReader(bytes.NewReader(p0), endless(0x5a)))
		if !errors.Is(err, h264.ErrNALUTooLarge) || !errors.Is(err, h264.ErrNotH264) {
			t.Fatalf("err = %v, want ErrNALUTooLarge and ErrNotH264", err)
		}
	})
	t.Run("access unit", func(t *testing.T) {
		// Slices of one picture, 1 MiB each, never end the access unit.
		piece := join(slice(true, 1), bytes.Repeat([]byte{0x5a}, 1<<20))
		r := io.MultiReader(bytes.NewReader(join(sps, pps, idr)), repeat(piece))
		_, _, err := splitAll(r)
		if !errors.Is(err, h264.ErrAccessUnitTooLarge) {
			t.Fatalf("err = %v, want ErrAccessUnitTooLarge", err)
		}
	})
}

func TestSplitterReadError(t *testing.T) {
	boom := errors.New("boom")
	r := io.MultiReader(bytes.NewReader(join(sps, pps, idr, p0, p0)), iotest.ErrReader(boom))
	aus, _, err := splitAll(r)
	if !errors.Is(err, boom) || len(aus) != 2 {
		t.Fatalf("got %d access units, err %v; want 2, boom", len(aus), err)
	}
}

// endless returns a reader of endless copies of b.
func endless(b byte) io.Reader { return repeat([]byte{b}) }

func repeat(piece []byte) io.Reader {
	return readerFunc(func(p []byte) (int, error) {
		n := 0
		for n < len(p) {
			n += copy(p[n:], piece)
		}
		return n, nil
	})
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// TestSplitterFFmpeg splits real libx264 streams.
func TestSplitterFFmpeg(t *testing.T) {
	dir := t.TempDir()
	for _, s := range []h264test.Stream{
		{GOP: 10, Frames: 45},
		{GOP: 7, Frames: 30, AUD: true},
		{Width: 640, Height: 360, GOP: 30, Frames: 40},
	} {
		t.Run(s.Name(), func(t *testing.T) {
			data, err := os.ReadFile(h264test.Encode(t, dir, s))
			if err != nil {
				t.Fatal(err)
			}
			aus, stats, err := splitAll(iotest.HalfReader(bytes.NewReader(data)))
			if err != io.EOF {
				t.Fatal(err)
			}
			// The last access unit cannot be known complete.
			if len(aus) != s.Frames-1 || stats.DroppedTail == 0 {
				t.Fatalf("%d access units, %d bytes dropped; want %d and the last one", len(aus), stats.DroppedTail, s.Frames-1)
			}
			var all []byte
			for i, au := range aus {
				if want := i%s.GOP == 0; au.Key != want || au.HasSPS != want || au.HasPPS != want {
					t.Errorf("access unit %d: Key %v HasSPS %v HasPPS %v, want %v", i, au.Key, au.HasSPS, au.HasPPS, want)
				}
				all = append(all, au.Data...)
			}
			// Byte-identical to the input, up to the dropped tail.
			if !bytes.Equal(all, data[:len(data)-stats.DroppedTail]) {
				t.Fatalf("access units differ from the input")
			}
			if n := h264test.CountFrames(t, all); n != len(aus) {
				t.Fatalf("ffprobe counts %d frames in %d access units", n, len(aus))
			}
		})
	}
}

// TestSplitterTruncated cuts a real stream in the middle of NAL units: all
// complete access units before the cut come out byte-identical, the cut
// one never.
func TestSplitterTruncated(t *testing.T) {
	data, err := os.ReadFile(h264test.Encode(t, t.TempDir(), h264test.Stream{GOP: 10, Frames: 30}))
	if err != nil {
		t.Fatal(err)
	}
	full, _, err := splitAll(bytes.NewReader(data))
	if err != io.EOF {
		t.Fatal(err)
	}
	offset := 0
	for k, au := range full {
		// Cut in the middle of access unit k's last NAL unit, and three
		// bytes into its first.
		for _, cut := range []int{offset + len(au.Data) - len(au.Data)/8, offset + 7} {
			aus, stats, err := splitAll(bytes.NewReader(data[:cut]))
			if err != io.EOF {
				t.Fatalf("cut at %d: %v", cut, err)
			}
			if len(aus) != k {
				t.Fatalf("cut at %d in access unit %d: got %d access units", cut, k, len(aus))
			}
			for i := range aus {
				if !bytes.Equal(aus[i].Data, full[i].Data) {
					t.Fatalf("cut at %d: access unit %d differs", cut, i)
				}
			}
			if want := len(bytes.TrimRight(data[offset:cut], "\x00")); stats.DroppedTail != want {
				t.Errorf("cut at %d: DroppedTail %d, want %d", cut, stats.DroppedTail, want)
			}
		}
		offset += len(au.Data)
	}
}
