//go:build !camd_noqrscan

package network

import (
	"image"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"
)

// QRScan is true when the build reads Wi-Fi QR codes (no camd_noqrscan tag).
const QRScan = true

// DecodeQR reads a QR code from a raw picture's luma plane. gozxing's
// finder search misses a few codes in a thousand however cleanly they
// are shown (zbar reads them; the misses depend on the code's content,
// not the picture's quality); second looks at the picture scaled to
// half, which move the modules' edges against the pixels, read most of
// them: 11 codes missed in 1,500 random ones of random size and place
// in a 640x360 picture before, 1 after (TestDecodeQRReadsHardCodes). A
// picture without a code costs the three looks (a few ms at 640x360,
// once per picture grabbed).
func DecodeQR(img *image.YCbCr) (string, bool) {
	if img == nil || img.Rect.Empty() || img.YStride < img.Rect.Dx() {
		return "", false
	}
	w, h := img.Rect.Dx(), img.Rect.Dy()
	luma := img.Y[img.YOffset(img.Rect.Min.X, img.Rect.Min.Y):]
	if text, ok := decodeLuma(luma, img.YStride, w, h); ok {
		return text, true
	}
	if w < 3 || h < 3 {
		return "", false
	}
	// Two halvings, the second a pixel off the first: which one reads
	// a code depends on where its modules' edges fall.
	for off := range 2 {
		hw, hh := (w-off)/2, (h-off)/2
		half := make([]byte, hw*hh)
		for y := range hh {
			row, next := luma[(2*y+off)*img.YStride+off:], luma[(2*y+off+1)*img.YStride+off:]
			for x := range hw {
				sum := int(row[2*x]) + int(row[2*x+1]) + int(next[2*x]) + int(next[2*x+1])
				half[y*hw+x] = byte(sum / 4)
			}
		}
		if text, ok := decodeLuma(half, hw, hw, hh); ok {
			return text, true
		}
	}
	return "", false
}

// decodeLuma reads a QR code from a w x h luma plane of the given stride.
func decodeLuma(luma []byte, stride, w, h int) (string, bool) {
	rows := (len(luma) + stride - w) / stride
	src, err := gozxing.NewPlanarYUVLuminanceSource(luma, stride, rows, 0, 0, w, h, false)
	if err != nil {
		return "", false
	}
	bmp, err := gozxing.NewBinaryBitmap(gozxing.NewHybridBinarizer(src))
	if err != nil {
		return "", false
	}
	res, err := qrcode.NewQRCodeReader().Decode(bmp, nil)
	if err != nil {
		return "", false
	}
	return res.GetText(), true
}
