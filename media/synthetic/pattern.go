package synthetic

import (
	"encoding/binary"
	"image"
	"strconv"
	"time"
)

// Limited-range (BT.601) luma and chroma levels.
const (
	black   = 16
	white   = 235
	neutral = 128
)

// bars are the 75% colour bars (Y, Cb, Cr): white, yellow, cyan, green,
// magenta, red, blue, and black.
var bars = [...][3]uint8{
	{180, 128, 128},
	{162, 44, 142},
	{131, 156, 44},
	{112, 72, 58},
	{84, 184, 198},
	{65, 100, 212},
	{35, 212, 114},
	{16, 128, 128},
}

// pattern draws the synthetic camera's picture straight into I420 planes:
// colour bars scrolling left over the top two thirds, a grey ramp below,
// a box bouncing over both, and a panel with the wall clock and the frame
// number. Almost every area is flat and all motion is whole-pixel, so the
// picture stays cheap to encode while every frame differs.
type pattern struct {
	w, h, fps int
	// barsH is the height of the bar area (even).
	barsH int
	// Rows of the bars, twice over so that a scrolled row is one copy.
	barY, barCb, barCr []uint8
	rampY              []uint8
	font               *glyphs
	// scale is the size of a font pixel; pad the margin around text.
	scale, pad int
	text       []byte
	// grain is noise in 0..2*grainAmp added to the luma, starting at a
	// different offset every frame; nil for a flat picture.
	grain []byte
}

// grainAmp is the amplitude of the grain in luma steps: enough for the
// rate control to have detail to spend bits on (see the package doc),
// too little to see.
const grainAmp = 2

// grainSpan is how far the grain's start moves between frames at most.
const grainSpan = 1 << 16

func newPattern(w, h, fps int, grain bool) *pattern {
	p := &pattern{w: w, h: h, fps: fps, font: newGlyphs()}
	if grain {
		p.grain = make([]byte, w*h+grainSpan+8)
		var x uint64 = 0x9e3779b97f4a7c15
		for i := range p.grain {
			x = splitmix(x)
			p.grain[i] = byte(x>>32) % (2*grainAmp + 1)
		}
	}
	p.barsH = (h * 2 / 3) &^ 1
	p.barY = make([]uint8, 2*w)
	p.barCb = make([]uint8, w)
	p.barCr = make([]uint8, w)
	for x := range 2 * w {
		c := bars[(x%w)*len(bars)/w]
		p.barY[x] = c[0]
		if x%2 == 0 {
			p.barCb[x/2] = c[1]
			p.barCr[x/2] = c[2]
		}
	}
	p.rampY = make([]uint8, w)
	for x := range w {
		p.rampY[x] = uint8(black + (white-black)*x/max(w-1, 1))
	}
	// Two lines of 13-pixel text take under a third of the height.
	p.scale = max(1, h/120)
	p.pad = 2 * p.scale
	p.text = make([]byte, 0, 16)
	return p
}

// newImage allocates a picture the pattern can draw into.
func (p *pattern) newImage() *image.YCbCr {
	return image.NewYCbCr(image.Rect(0, 0, p.w, p.h), image.YCbCrSubsampleRatio420)
}

// draw paints frame n, showing the wall clock now, into img, which must
// come from newImage.
func (p *pattern) draw(img *image.YCbCr, n uint64, now time.Time) {
	w, h := p.w, p.h
	cw := w / 2

	// Bars scroll one width every 8 seconds, by an even number of pixels
	// so that the chroma moves with the luma.
	off := int(n*uint64(w)/uint64(8*p.fps)) % w &^ 1
	for y := range p.barsH {
		copy(img.Y[y*img.YStride:y*img.YStride+w], p.barY[off:off+w])
	}
	coff := off / 2
	for y := range p.barsH / 2 {
		row := y * img.CStride
		copy(img.Cb[row:row+cw-coff], p.barCb[coff:])
		copy(img.Cb[row+cw-coff:row+cw], p.barCb[:coff])
		copy(img.Cr[row:row+cw-coff], p.barCr[coff:])
		copy(img.Cr[row+cw-coff:row+cw], p.barCr[:coff])
	}
	for y := p.barsH; y < h; y++ {
		copy(img.Y[y*img.YStride:y*img.YStride+w], p.rampY)
	}
	fillChroma(img, 0, p.barsH, w, h, neutral, neutral)

	// The box crosses the picture in about 3 s horizontally and 4 s
	// vertically, bouncing off the edges.
	bs := (h / 5) &^ 1
	bx := bounce(n*uint64(w)/uint64(3*p.fps), w-bs) &^ 1
	by := bounce(n*uint64(h)/uint64(4*p.fps), h-bs) &^ 1
	fillRect(img, bx, by, bx+bs, by+bs, 150, 44, 200) // orange-ish
	in := (bs / 4) &^ 1
	fillRect(img, bx+in, by+in, bx+bs-in, by+bs-in, white, neutral, neutral)

	// Clock and frame number, bottom left, on black.
	s := p.scale
	lineH := glyphH * s
	tw := 12 * glyphW * s // "15:04:05.000" is the longest line
	x0, y0 := p.pad, h-2*lineH-3*p.pad
	fillRect(img, 0, y0-p.pad, (x0+tw+p.pad+1)&^1, h, black, neutral, neutral)
	p.text = now.AppendFormat(p.text[:0], "15:04:05.000")
	p.drawText(img, x0, y0, p.text)
	p.text = append(p.text[:0], '#')
	p.text = strconv.AppendUint(p.text, n, 10)
	p.drawText(img, x0, y0+lineH+p.pad, p.text)

	if p.grain != nil {
		p.addGrain(img, n)
	}
}

// addGrain adds fresh noise to the luma, 8 pixels per step: the pattern's
// levels are 16..235 and the grain at most 2*grainAmp, so no byte carries
// into the next.
func (p *pattern) addGrain(img *image.YCbCr, n uint64) {
	g := p.grain[splitmix(n)%grainSpan:]
	for y := range p.h {
		row := img.Y[y*img.YStride : y*img.YStride+p.w]
		gr := g[y*p.w:]
		x := 0
		for ; x+8 <= len(row); x += 8 {
			v := binary.LittleEndian.Uint64(row[x:]) + binary.LittleEndian.Uint64(gr[x:])
			binary.LittleEndian.PutUint64(row[x:], v)
		}
		for ; x < len(row); x++ {
			row[x] += gr[x]
		}
	}
}

// splitmix is the SplitMix64 mixing step: a cheap, well spread hash.
func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// bounce maps a growing position onto 0..span and back.
func bounce(pos uint64, span int) int {
	if span <= 0 {
		return 0
	}
	t := int(pos % uint64(2*span))
	if t > span {
		t = 2*span - t
	}
	return t
}

// drawText prints ASCII text with its top left corner at x, y, white on
// whatever is there, each font pixel a scale x scale square. Only luma is
// touched; text clipped by the picture's edges is cut off.
func (p *pattern) drawText(img *image.YCbCr, x, y int, text []byte) {
	s := p.scale
	for i, c := range text {
		if c >= 128 {
			c = '?'
		}
		g := &p.font[c]
		cx := x + i*glyphW*s
		for gy := range glyphH {
			bits := g[gy]
			for sy := range s {
				py := y + gy*s + sy
				if py < 0 || py >= p.h {
					continue
				}
				row := img.Y[py*img.YStride:]
				for gx := range glyphW {
					if bits&(1<<gx) == 0 {
						continue
					}
					px := cx + gx*s
					for sx := range s {
						if px+sx >= 0 && px+sx < p.w {
							row[px+sx] = white
						}
					}
				}
			}
		}
	}
}

// fillRect fills [x0,x1)x[y0,y1) with one colour. Coordinates must be
// even so that luma and chroma cover the same area.
func fillRect(img *image.YCbCr, x0, y0, x1, y1 int, yv, cb, cr uint8) {
	b := img.Rect
	x0, y0 = max(x0, b.Min.X), max(y0, b.Min.Y)
	x1, y1 = min(x1, b.Max.X), min(y1, b.Max.Y)
	if x0 >= x1 || y0 >= y1 {
		return
	}
	for y := y0; y < y1; y++ {
		row := img.Y[y*img.YStride+x0 : y*img.YStride+x1]
		for i := range row {
			row[i] = yv
		}
	}
	fillChroma(img, x0, y0, x1, y1, cb, cr)
}

func fillChroma(img *image.YCbCr, x0, y0, x1, y1 int, cb, cr uint8) {
	for y := y0 / 2; y < (y1+1)/2; y++ {
		o := y * img.CStride
		rb := img.Cb[o+x0/2 : o+(x1+1)/2]
		rr := img.Cr[o+x0/2 : o+(x1+1)/2]
		for i := range rb {
			rb[i] = cb
			rr[i] = cr
		}
	}
}
