package synthetic

import (
	"image"
	"math"
	"slices"
	"sync/atomic"
	"time"
)

// controls are the settings the synthetic camera applies live, from the
// next frame on: a camera's sensor flips and mirrors for free, so this
// costs one pass over the picture only while a flip is on.
type controls struct {
	flip, mirror atomic.Bool
	loc          atomic.Pointer[time.Location]
	brightness   atomic.Uint64 // float64 bits
}

// SetFlip turns the picture upside down (flip) and left to right
// (mirror); both at once is a camera mounted on a ceiling.
func (s *Source) SetFlip(flip, mirror bool) {
	s.flip.Store(flip)
	s.mirror.Store(mirror)
}

// Flip reports what SetFlip set.
func (s *Source) Flip() (flip, mirror bool) { return s.flip.Load(), s.mirror.Load() }

// Muted reports what SetMute set.
func (s *Source) Muted() bool { return s.mute.Load() }

// Location is the clock's time zone (nil: local time).
func (s *Source) Location() *time.Location { return s.loc.Load() }

// SetLocation sets the time zone of the clock in the picture (nil: the
// process's local time).
func (s *Source) SetLocation(loc *time.Location) { s.loc.Store(loc) }

// Brightness is the mean luma of the last picture, 0 (black) to 1
// (white): the light level for day/night switching on a board without a
// light sensor.
func (s *Source) Brightness() float64 { return math.Float64frombits(s.brightness.Load()) }

// clock is the time to show for now.
func (c *controls) clock(now time.Time) time.Time {
	if loc := c.loc.Load(); loc != nil {
		return now.In(loc)
	}
	return now
}

// adjust flips the picture as set and measures its brightness.
func (c *controls) adjust(img *image.YCbCr) {
	flip, mirror := c.flip.Load(), c.mirror.Load()
	if flip || mirror {
		b := img.Bounds()
		w, h := b.Dx(), b.Dy()
		transform(img.Y, img.YStride, w, h, flip, mirror)
		transform(img.Cb, img.CStride, (w+1)/2, (h+1)/2, flip, mirror)
		transform(img.Cr, img.CStride, (w+1)/2, (h+1)/2, flip, mirror)
	}
	c.brightness.Store(math.Float64bits(meanLuma(img)))
}

// transform flips a plane of w x h samples upside down and/or mirrors it.
func transform(p []uint8, stride, w, h int, flip, mirror bool) {
	if flip && mirror && stride == w {
		slices.Reverse(p[:w*h]) // a half turn
		return
	}
	if mirror {
		for y := range h {
			slices.Reverse(p[y*stride : y*stride+w])
		}
	}
	if flip {
		tmp := make([]uint8, w)
		for y := range h / 2 {
			a, b := p[y*stride:y*stride+w], p[(h-1-y)*stride:(h-1-y)*stride+w]
			copy(tmp, a)
			copy(a, b)
			copy(b, tmp)
		}
	}
}

// meanLuma samples every 16th pixel of every 16th row.
func meanLuma(img *image.YCbCr) float64 {
	b := img.Bounds()
	var sum, n uint64
	for y := 0; y < b.Dy(); y += 16 {
		row := img.Y[y*img.YStride : y*img.YStride+b.Dx()]
		for x := 0; x < len(row); x += 16 {
			sum += uint64(row[x])
			n++
		}
	}
	if n == 0 {
		return 0
	}
	v := (float64(sum)/float64(n) - black) / (white - black)
	return min(max(v, 0), 1)
}
