package snapshot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"sync"
	"sync/atomic"
	"time"
)

// ErrNoPicture: no picture came in time (the source is stopped, or gives
// no raw pictures).
var ErrNoPicture = errors.New("snapshot: no picture from the source")

// DefaultQuality is the JPEG quality of Grabber.JPEG.
const DefaultQuality = 85

// Picture is a copy of a raw picture and when it was captured.
type Picture struct {
	Image    *image.YCbCr
	Captured time.Time
}

// Grabber hands the next raw picture to whoever asks for it.
type Grabber struct {
	want    atomic.Bool
	mu      sync.Mutex
	waiters []chan Picture
	offered atomic.Uint64
}

// Offer is called by the source with each picture before it is encoded.
// It returns at once unless a snapshot is wanted; pic is only read during
// the call.
func (g *Grabber) Offer(pic *image.YCbCr, captured time.Time) {
	g.offered.Add(1)
	if !g.want.Load() {
		return
	}
	g.mu.Lock()
	waiters := g.waiters
	g.waiters = nil
	g.want.Store(false)
	g.mu.Unlock()
	if len(waiters) == 0 {
		return
	}
	p := Picture{Image: clone(pic), Captured: captured}
	for _, w := range waiters {
		w <- p
	}
}

// Offered counts the pictures offered so far: zero means the source gives
// no raw pictures.
func (g *Grabber) Offered() uint64 { return g.offered.Load() }

// Grab waits for the next picture.
func (g *Grabber) Grab(ctx context.Context) (Picture, error) {
	ch := make(chan Picture, 1)
	g.mu.Lock()
	g.waiters = append(g.waiters, ch)
	g.want.Store(true)
	g.mu.Unlock()
	select {
	case p := <-ch:
		return p, nil
	case <-ctx.Done():
		g.mu.Lock()
		for i, w := range g.waiters {
			if w == ch {
				g.waiters = append(g.waiters[:i], g.waiters[i+1:]...)
				break
			}
		}
		g.mu.Unlock()
		select {
		case p := <-ch: // delivered meanwhile
			return p, nil
		default:
		}
		return Picture{}, fmt.Errorf("%w: %v", ErrNoPicture, ctx.Err())
	}
}

// JPEG grabs the next picture and encodes it.
func (g *Grabber) JPEG(ctx context.Context, quality int) ([]byte, time.Time, error) {
	p, err := g.Grab(ctx)
	if err != nil {
		return nil, time.Time{}, err
	}
	b, err := Encode(p.Image, quality)
	return b, p.Captured, err
}

// Encode encodes a picture as JPEG (quality 1-100, 0 for the default).
func Encode(img image.Image, quality int) ([]byte, error) {
	if quality <= 0 || quality > 100 {
		quality = DefaultQuality
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: quality}); err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	return buf.Bytes(), nil
}

// clone copies a picture into compact planes.
func clone(src *image.YCbCr) *image.YCbCr {
	r := src.Rect
	dst := image.NewYCbCr(r, src.SubsampleRatio)
	for y := r.Min.Y; y < r.Max.Y; y++ {
		copy(dst.Y[dst.YOffset(r.Min.X, y):dst.YOffset(r.Min.X, y)+r.Dx()], src.Y[src.YOffset(r.Min.X, y):])
	}
	cw := dst.CStride
	ch := len(dst.Cb) / max(cw, 1)
	for y := range ch {
		so := y * src.CStride
		copy(dst.Cb[y*cw:(y+1)*cw], src.Cb[so:])
		copy(dst.Cr[y*cw:(y+1)*cw], src.Cr[so:])
	}
	return dst
}
