package synthetic

import (
	"image"
	"math"
	"slices"
	"testing"
	"time"
)

func TestTransform(t *testing.T) {
	// A 3x2 plane in a stride of 4 (the 4th column is padding) and the
	// same plane packed.
	cases := []struct {
		name         string
		flip, mirror bool
		want         []uint8
	}{
		{"none", false, false, []uint8{1, 2, 3, 4, 5, 6}},
		{"mirror", false, true, []uint8{3, 2, 1, 6, 5, 4}},
		{"flip", true, false, []uint8{4, 5, 6, 1, 2, 3}},
		{"both", true, true, []uint8{6, 5, 4, 3, 2, 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			packed := []uint8{1, 2, 3, 4, 5, 6}
			transform(packed, 3, 3, 2, c.flip, c.mirror)
			if !slices.Equal(packed, c.want) {
				t.Errorf("packed: %v, want %v", packed, c.want)
			}
			padded := []uint8{1, 2, 3, 99, 4, 5, 6, 99}
			transform(padded, 4, 3, 2, c.flip, c.mirror)
			got := append(slices.Clone(padded[0:3]), padded[4:7]...)
			if !slices.Equal(got, c.want) || padded[3] != 99 || padded[7] != 99 {
				t.Errorf("padded: %v, want %v and padding untouched", padded, c.want)
			}
		})
	}
}

func TestAdjustFlipsAndMeasures(t *testing.T) {
	var c controls
	img := image.NewYCbCr(image.Rect(0, 0, 64, 32), image.YCbCrSubsampleRatio420)
	for i := range img.Y {
		img.Y[i] = black
	}
	img.Y[0] = white // top left
	img.Cb[0] = 7
	c.adjust(img)
	if b := math0(c.brightness.Load()); b != 0.125 { // 1 of 8 samples
		t.Fatalf("brightness of a black picture with one white sample: %v", b)
	}
	c.flip.Store(true)
	c.mirror.Store(true)
	c.adjust(img)
	if img.Y[len(img.Y)-1] != white || img.Y[0] != black || img.Cb[len(img.Cb)-1] != 7 {
		t.Fatal("half turn did not move the top-left corner to the bottom right")
	}
	for i := range img.Y {
		img.Y[i] = white
	}
	c.flip.Store(false)
	c.mirror.Store(false)
	c.adjust(img)
	if b := math0(c.brightness.Load()); b != 1 {
		t.Fatalf("white picture: %v", b)
	}
}

func TestClockLocation(t *testing.T) {
	var c controls
	now := time.Date(2026, 1, 2, 12, 0, 0, 0, time.UTC)
	if c.clock(now) != now {
		t.Fatal("no location changed the time")
	}
	tokyo := time.FixedZone("JST", 9*3600)
	c.loc.Store(tokyo)
	if got := c.clock(now).Format("15:04"); got != "21:00" {
		t.Fatalf("clock in JST: %s", got)
	}
}

func math0(bits uint64) float64 { return math.Float64frombits(bits) }
