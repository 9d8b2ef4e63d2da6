package h264_test

import (
	"bytes"
	"io"
	"os"
	"testing"
	"testing/iotest"

	"github.com/camd-project/camd/media/h264"
	"github.com/camd-project/camd/media/h264/h264test"
)

// BenchmarkSplit720p2Mbps measures splitter throughput (MB/s) on ten
// seconds of 1280x720 30 fps video at 2 Mbps, read whole, in the 4 KiB
// pieces that a pipe delivers, and a byte at a time.
func BenchmarkSplit720p2Mbps(b *testing.B) {
	path := h264test.Encode(b, b.TempDir(), h264test.Stream{Width: 1280, Height: 720, Frames: 300, GOP: 60, Bitrate: 2_000_000})
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	for name, reader := range map[string]func() io.Reader{
		"whole": func() io.Reader { return bytes.NewReader(data) },
		"4KiB":  func() io.Reader { return &chunkReader{r: bytes.NewReader(data), n: 4096} },
		"half":  func() io.Reader { return iotest.HalfReader(bytes.NewReader(data)) },
		"1byte": func() io.Reader { return iotest.OneByteReader(bytes.NewReader(data)) },
	} {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				s := h264.NewSplitter(reader())
				n := 0
				for {
					if _, err := s.Next(); err != nil {
						if err != io.EOF {
							b.Fatal(err)
						}
						break
					}
					n++
				}
				if n != 299 {
					b.Fatalf("%d access units", n)
				}
			}
		})
	}
}

type chunkReader struct {
	r io.Reader
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) { return c.r.Read(p[:min(len(p), c.n)]) }
