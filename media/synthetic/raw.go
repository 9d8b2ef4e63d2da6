package synthetic

import (
	"image"
	"sync/atomic"
	"time"
)

// RawFunc receives each picture before it is encoded (snapshots, motion
// detection). It is called on the video goroutine, so it must return
// quickly, and it must not keep pic: the next frame is drawn into it.
type RawFunc func(pic *image.YCbCr, captured time.Time)

type rawHook struct{ fn atomic.Pointer[RawFunc] }

// SetRaw sets (or, with nil, removes) the function that receives the raw
// pictures, from the next frame on.
func (s *Source) SetRaw(fn RawFunc) {
	if fn == nil {
		s.raw.fn.Store(nil)
		return
	}
	s.raw.fn.Store(&fn)
}

func (s *Source) offerRaw(pic *image.YCbCr, captured time.Time) {
	if fn := s.raw.fn.Load(); fn != nil {
		(*fn)(pic, captured)
	}
}
