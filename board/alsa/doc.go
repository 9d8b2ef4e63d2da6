// Package alsa is the board's speaker on Linux: ALSA playback through
// miniaudio (malgo, as the microphone's capture in media/capture), in
// builds with cgo. Elsewhere Open returns ErrUnavailable.
//
// Play queues 48 kHz mono PCM in a bounded buffer (1 s); miniaudio's
// thread takes it as the device asks, and plays silence when nothing is
// queued. A Play that would overflow the buffer drops the oldest
// samples: the speaker keeps up with the call rather than lagging behind
// it.
package alsa
