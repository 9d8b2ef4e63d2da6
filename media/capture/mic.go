package capture

import "time"

// mic is a started microphone. It delivers 48 kHz mono 16-bit PCM in
// chunks as the device captures them; the ALSA implementation is in
// alsa_linux.go.
type mic struct {
	// name describes the device in logs and errors.
	name string
	// chunks carries the samples with the time they arrived.
	chunks <-chan pcmChunk
	// stopped is closed when the device stops by itself (unplugged, an
	// error), not when close is called.
	stopped <-chan struct{}
	// close stops the device and frees it; Run calls it once, after its
	// last receive from chunks.
	close func()
}

// pcmChunk is one delivery of a microphone.
type pcmChunk struct {
	samples []int16
	// at is when the chunk arrived: its last sample was captured just
	// before.
	at time.Time
}
