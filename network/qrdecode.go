//go:build !camd_noqrscan

package network

import (
	"image"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"
)

// QRScan is true when the build reads Wi-Fi QR codes (no camd_noqrscan tag).
const QRScan = true

// DecodeQR reads a QR code from a raw picture's luma plane.
func DecodeQR(img *image.YCbCr) (string, bool) {
	if img == nil || img.Rect.Empty() || img.YStride < img.Rect.Dx() {
		return "", false
	}
	src, err := gozxing.NewPlanarYUVLuminanceSource(img.Y, img.YStride, len(img.Y)/img.YStride, 0, 0, img.Rect.Dx(), img.Rect.Dy(), false)
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
