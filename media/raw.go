package media

import (
	"image"
	"sync/atomic"
	"time"
)

// RawFunc receives each picture of an encoding source before it is
// encoded (snapshots, motion detection). It is called on the source's
// video goroutine, so it must return quickly, and it must not keep pic:
// the next frame reuses it.
type RawFunc func(pic *image.YCbCr, captured time.Time)

// RawHook holds a source's RawFunc; its zero value holds none. Sources
// embed it to offer SetRaw.
type RawHook struct{ fn atomic.Pointer[RawFunc] }

// SetRaw sets (or, with nil, removes) the function that receives the raw
// pictures, from the next frame on.
func (h *RawHook) SetRaw(fn RawFunc) {
	if fn == nil {
		h.fn.Store(nil)
		return
	}
	h.fn.Store(&fn)
}

// OfferRaw hands pic to the RawFunc, if one is set.
func (h *RawHook) OfferRaw(pic *image.YCbCr, captured time.Time) {
	if fn := h.fn.Load(); fn != nil {
		(*fn)(pic, captured)
	}
}
