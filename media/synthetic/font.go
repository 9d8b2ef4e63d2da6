package synthetic

import (
	"image"

	"golang.org/x/image/font/basicfont"
)

// glyphW and glyphH are the cell size of basicfont.Face7x13.
const (
	glyphW = 7
	glyphH = 13
)

// glyphs holds the 7x13 bitmaps of the characters the pattern prints, one
// bit per pixel, indexed by ASCII code.
type glyphs [128][glyphH]uint8

// newGlyphs copies the printable ASCII glyphs out of basicfont.Face7x13 so
// that drawing reads a small table instead of going through image.Image.
func newGlyphs() *glyphs {
	var g glyphs
	face := basicfont.Face7x13
	h := face.Ascent + face.Descent
	for _, rg := range face.Ranges {
		for r := rg.Low; r < rg.High && r < 128; r++ {
			y0 := (int(r-rg.Low) + rg.Offset) * h
			for y := 0; y < glyphH && y < h; y++ {
				var row uint8
				for x := 0; x < face.Width && x < glyphW; x++ {
					if alphaAt(face.Mask, x, y0+y) >= 0x80 {
						row |= 1 << x
					}
				}
				g[r][y] = row
			}
		}
	}
	return &g
}

func alphaAt(m image.Image, x, y int) uint8 {
	if a, ok := m.(*image.Alpha); ok {
		return a.AlphaAt(x, y).A
	}
	_, _, _, a := m.At(x, y).RGBA()
	return uint8(a >> 8)
}
