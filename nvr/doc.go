// Package nvr is NVR mode: the cameras an NVR records (docs/nvr.md).
//
// A [Manager] keeps the cameras the owner added in the catalog, each
// with its credential (the viewer token from pairing with a camd camera,
// or an RTSP user and password) and its own recording stream number, and
// runs a puller per camera that publishes what the camera sends into a
// [media.Hub] of the camera's own, without re-encoding: camd cameras over
// WebRTC with the WHEP client, other makes over RTSP (gortsplib's
// client), ONVIF cameras over the RTSP address their media service
// gives. The consumers of a camera's hub (its recorder, live viewers)
// are attached by whoever built the manager, through Options.Attach.
//
// Health: a camera from which no frame came for Options.Silence is
// offline (an event), tried again with a backoff that doubles up to
// Options.MaxBackoff, and online again (an event) at its first frame. A
// camd camera that refuses the NVR's credential (its owner revoked the
// NVR) is unauthorized (an event) and tried again only every
// Options.UnauthorizedRetry.
//
// A camera in motion mode is recorded on the motion it reports (a camd
// camera's event stream, an ONVIF camera's PullPoint subscription),
// through Options.Motion. RTSP cameras' Opus audio is pulled with their
// video; H.264 with B-frames is refused (ErrBFrames).
//
// Secrets are never logged, and Camera, the record the API returns,
// holds none.
package nvr
