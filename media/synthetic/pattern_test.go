package synthetic

import (
	"bytes"
	"testing"
	"time"
)

// clock is a fixed wall-clock time for drawing tests.
var clock = time.Date(2026, 11, 29, 12, 34, 56, 789e6, time.Local)

func TestPatternChangesEveryFrame(t *testing.T) {
	for _, grain := range []bool{false, true} {
		p := newPattern(320, 240, 30, grain)
		a, b := p.newImage(), p.newImage()
		p.draw(a, 10, clock)
		p.draw(b, 11, clock.Add(33*time.Millisecond))
		// The bars and the box move: compare the top of the picture,
		// away from the text.
		top := a.YStride * p.barsH
		diff := 0
		for i := range top {
			if a.Y[i] != b.Y[i] {
				diff++
			}
		}
		if diff < top/50 {
			t.Errorf("grain=%v: only %d of %d luma samples in the bars changed between frames", grain, diff, top)
		}
		if bytes.Equal(a.Cb, b.Cb) {
			t.Errorf("grain=%v: chroma did not move", grain)
		}
	}
}

func TestPatternIsDeterministic(t *testing.T) {
	p := newPattern(320, 240, 30, true)
	a, b := p.newImage(), p.newImage()
	p.draw(a, 7, clock)
	p.draw(b, 7, clock)
	if !bytes.Equal(a.Y, b.Y) || !bytes.Equal(a.Cb, b.Cb) || !bytes.Equal(a.Cr, b.Cr) {
		t.Fatal("the same frame drawn twice differs")
	}
}

// TestPatternTextRenders reads the clock and the frame counter back from
// the luma plane, glyph by glyph.
func TestPatternTextRenders(t *testing.T) {
	for _, size := range [][2]int{{320, 240}, {640, 480}, {1280, 720}} {
		w, h := size[0], size[1]
		p := newPattern(w, h, 30, false)
		img := p.newImage()
		p.draw(img, 1234567, clock)
		s := p.scale
		if w >= 640 && glyphH*s < 48 {
			t.Errorf("%dx%d: text is %d pixels high, too small to read", w, h, glyphH*s)
		}
		x0, y0 := p.pad, h-2*glyphH*s-3*p.pad
		lines := []struct {
			y    int
			want string
		}{
			{y0, "12:34:56.789"},
			{y0 + glyphH*s + p.pad, "#1234567"},
		}
		for _, l := range lines {
			if got := readText(p, img.Y, img.YStride, x0, l.y, len(l.want)); got != l.want {
				t.Errorf("%dx%d: read %q from the picture, want %q", w, h, got, l.want)
			}
		}
	}
}

// readText recognizes n glyphs at x, y by sampling the centre of every
// font pixel and matching the bitmap against the font.
func readText(p *pattern, luma []byte, stride, x, y, n int) string {
	s := p.scale
	out := make([]byte, n)
	for i := range n {
		var got [glyphH]uint8
		for gy := range glyphH {
			for gx := range glyphW {
				px := x + (i*glyphW+gx)*s + s/2
				py := y + gy*s + s/2
				if luma[py*stride+px] > 200 {
					got[gy] |= 1 << gx
				}
			}
		}
		out[i] = '?'
		for c := byte(' '); c < 127; c++ {
			if p.font[c] == got {
				out[i] = c
				break
			}
		}
	}
	return string(out)
}

func TestBounce(t *testing.T) {
	tests := []struct {
		pos  uint64
		span int
		want int
	}{
		{0, 10, 0}, {5, 10, 5}, {10, 10, 10}, {11, 10, 9}, {20, 10, 0}, {25, 10, 5}, {7, 0, 0},
	}
	for _, tt := range tests {
		if got := bounce(tt.pos, tt.span); got != tt.want {
			t.Errorf("bounce(%d, %d) = %d, want %d", tt.pos, tt.span, got, tt.want)
		}
	}
}

func TestToneBeepsOnTheSecond(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 900e6, time.UTC) // 100 ms before a second
	g := tone{hz: 440, rate: 48000, start: start}
	buf := make([]int16, 48000) // one second
	g.fill(buf, 0)
	peak := func(from, to time.Duration) int {
		m := 0
		for _, v := range buf[int(from*48/time.Millisecond):int(to*48/time.Millisecond)] {
			m = max(m, abs(int(v)))
		}
		return m
	}
	if p := peak(0, 100*time.Millisecond); p != 0 {
		t.Errorf("peak before the second = %d, want silence", p)
	}
	if p := peak(110*time.Millisecond, 190*time.Millisecond); p < 9000 {
		t.Errorf("peak during the beep = %d, want about 9830", p)
	}
	if p := peak(200*time.Millisecond, time.Second); p != 0 {
		t.Errorf("peak after the beep = %d, want silence", p)
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

func BenchmarkDraw640x480(b *testing.B)  { benchmarkDraw(b, 640, 480) }
func BenchmarkDraw1280x720(b *testing.B) { benchmarkDraw(b, 1280, 720) }

func benchmarkDraw(b *testing.B, w, h int) {
	p := newPattern(w, h, 30, true)
	img := p.newImage()
	now := time.Now()
	b.SetBytes(int64(w * h * 3 / 2))
	var n uint64
	for b.Loop() {
		p.draw(img, n, now)
		n++
	}
}
