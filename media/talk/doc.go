// Package talk plays a doorbell call's phone audio on the camera's
// speaker (docs/calls.md): RTP packets through a bounded jitter buffer
// sized from the measured jitter (RFC 3550), decoded to 48 kHz PCM (G.711 µ-law and A-law in Go in every
// build, Opus through libopus in cgo builds), lost packets concealed
// (G.711: the last packet repeated and faded; Opus: libopus's own), at
// the speaker volume setting; and a call's echo handling: the
// half-duplex echo suppressor (Gate), a voice activity detector on what
// the speaker plays that holds the camera's microphone down while the
// phone talks, and a hang time after; and the full-duplex acoustic echo
// canceller (Canceller: speexdsp's adaptive filter and residual echo
// suppressor through cgo, in builds that have it).
package talk
