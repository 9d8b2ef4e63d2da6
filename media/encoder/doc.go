// Package encoder drives the openh264 and Opus encoders bundled with
// pion/mediadevices for camd's encoding sources (the synthetic camera and
// V4L2 capture).
//
// H264 takes one I420 picture at a time and, before encoding it, applies
// the media.Publisher's keyframe request and target bitrate (clamped to
// the configured bounds); it forces an IDR on the first picture, on
// request and every KeyframeInterval, checks the output by its NAL unit
// types (read with package media/h264, as every other H.264 stream in
// camd: Frame.Key is true only for access units holding an IDR, which
// always carry SPS and PPS) and publishes it. Its openh264 configuration
// and why it keeps the output on the target bitrate are in the
// documentation of package synthetic.
//
// H264Options are also the video options of the sources: SourceDefaults
// fills them in (and the source's logger) and ValidateAs checks them with
// the source's package name in the errors.
//
// Opus encodes 20 ms blocks of 48 kHz PCM.
//
// Both need cgo; without it the constructors return ErrNoCgo.
package encoder
