// Package media carries encoded audio and video from a source to its
// consumers.
//
// A source (synthetic camera, V4L2/ALSA capture, or a hardware encoder's
// H.264 passthrough) publishes each encoded Frame once into a Hub. The hub
// fans every frame out to its consumers (live viewers, and later the
// recorder, snapshots and motion detection) through a bounded queue per
// consumer, so a slow consumer loses whole frames up to the next keyframe
// and never stalls the source or the other consumers.
//
// Sub-packages hold the sources (synthetic, passthrough, capture), H.264
// parsing (h264) and live view over WebRTC (whep).
package media
