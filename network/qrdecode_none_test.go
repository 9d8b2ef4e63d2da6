//go:build camd_noqrscan

package network

import (
	"image"
	"testing"
)

// TestNoQRScanBuild: a build without the QR decoder offers no code window.
// make vet runs it (go test -tags camd_noqrscan).
func TestNoQRScanBuild(t *testing.T) {
	if QRScan {
		t.Fatal("QRScan in a camd_noqrscan build")
	}
	if _, ok := DecodeQR(image.NewYCbCr(image.Rect(0, 0, 64, 64), image.YCbCrSubsampleRatio420)); ok {
		t.Fatal("decoded a code")
	}
}
