//go:build camd_noqrscan

package network

import "image"

// QRScan is false in a build with the camd_noqrscan tag (the lean
// embedded builds, whose passthrough cameras have no raw pictures to read
// and to which the QR decoder's character set tables would add about
// 1 MB): the Wi-Fi code window is not offered; setup mode's access point
// is the way onto a network.
const QRScan = false

// DecodeQR finds nothing in a build without the QR decoder.
func DecodeQR(*image.YCbCr) (string, bool) { return "", false }
