package media

import "time"

// MicFunc receives each 20 ms block of an encoding source's microphone
// (48 kHz mono PCM) before it is encoded, and may change it in place: a
// call's echo handling (media/talk.Gate), the simulated board's
// speaker-to-microphone loop. captured is when the block's first sample
// was captured. It is called on the source's audio goroutine, so it must
// return quickly, and it must not keep pcm.
type MicFunc func(pcm []int16, captured time.Time)
