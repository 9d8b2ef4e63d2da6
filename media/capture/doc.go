// Package capture is the camera source: a V4L2 device read through
// pion/mediadevices' camera driver, converted to I420 and encoded to H.264
// with openh264 exactly as the synthetic camera is (package
// synthetic/encoder): keyframes on request and every KeyframeInterval,
// bitrate following the hub's target.
//
// The real implementation builds on Linux with cgo; elsewhere Run returns
// ErrUnavailable. A missing device fails Run with
// "capture: open /dev/video0: no such device" (ErrNoDevice), so the
// supervisor retries until the camera appears.
//
// Importing the package registers mediadevices' camera driver, whose
// init opens every /dev/video* node once to read its name. A camera
// plugged in later is found by a new scan when Run does not know it.
//
// There is no microphone capture yet: mediadevices' microphone driver
// needs github.com/gen2brain/malgo, which camd does not require.
package capture
