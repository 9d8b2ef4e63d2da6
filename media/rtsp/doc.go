// Package rtsp serves the live stream over RTSP (gortsplib) to NVRs,
// Home Assistant, VLC and ffmpeg: H.264, Opus and, when the source has
// the PCM, G.711 µ-law (media.Frame.G711), over TCP (interleaved) and UDP,
// with digest authentication by stream keys (the user name is the key's
// ID, the password its secret; VerifyFunc). Each session is a consumer of
// the same hub as WHEP: it starts at a keyframe (an encoding source makes
// one; a passthrough session starts with the cached group of pictures)
// and nothing is encoded for RTSP. docs/rtsp.md describes the URL,
// transports and codecs.
package rtsp
