//go:build !cgo

package encoder

import (
	"image"
	"time"

	"github.com/camd-project/camd/media"
)

// H264 is unavailable without cgo.
type H264 struct{}

// NewH264 returns ErrNoCgo.
func NewH264(H264Options) (*H264, error) { return nil, ErrNoCgo }

// Encode returns ErrNoCgo.
func (*H264) Encode(media.Publisher, *image.YCbCr, time.Duration, time.Time) error {
	return ErrNoCgo
}

// Bitrate returns 0.
func (*H264) Bitrate() int { return 0 }

// Stats returns zero counters.
func (*H264) Stats() H264Stats { return H264Stats{} }

// Close does nothing.
func (*H264) Close() error { return nil }

// Opus is unavailable without cgo.
type Opus struct{}

// NewOpus returns ErrNoCgo.
func NewOpus(channels, bitrate int) (*Opus, error) { return nil, ErrNoCgo }

// Encode returns ErrNoCgo.
func (*Opus) Encode([]int16) ([]byte, error) { return nil, ErrNoCgo }

// Close does nothing.
func (*Opus) Close() error { return nil }
