package snapshot

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/jpeg"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func picture(w, h int, y uint8) *image.YCbCr {
	img := image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio420)
	for i := range img.Y {
		img.Y[i] = y
	}
	for i := range img.Cb {
		img.Cb[i], img.Cr[i] = 128, 128
	}
	return img
}

func TestGrabbersShareTheNextPicture(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var g Grabber
		g.Offer(picture(64, 48, 10), time.Now()) // nobody waiting: ignored
		var wg sync.WaitGroup
		results := make([][]byte, 3)
		for i := range results {
			wg.Go(func() {
				b, _, err := g.JPEG(context.Background(), 0)
				if err != nil {
					t.Error(err)
				}
				results[i] = b
			})
		}
		synctest.Wait() // all three wait for a picture
		pic := picture(64, 48, 200)
		g.Offer(pic, time.Now())
		clear(pic.Y) // the source reuses its buffer: the copy must not change
		wg.Wait()
		for i, b := range results {
			img, err := jpeg.Decode(bytes.NewReader(b))
			if err != nil {
				t.Fatalf("waiter %d: %v", i, err)
			}
			if img.Bounds().Dx() != 64 {
				t.Fatalf("size %v", img.Bounds())
			}
			r, _, _, _ := img.At(10, 10).RGBA()
			if r>>8 < 180 {
				t.Fatalf("waiter %d got a picture that changed after Offer returned (red %d)", i, r>>8)
			}
		}
		if g.Offered() != 2 {
			t.Fatalf("Offered = %d, want 2", g.Offered())
		}
	})
}

func TestNoPictureTimesOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var g Grabber
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		start := time.Now()
		if _, err := g.Grab(ctx); !errors.Is(err, ErrNoPicture) {
			t.Fatalf("Grab without pictures: %v", err)
		}
		if waited := time.Since(start); waited != 20*time.Millisecond {
			t.Fatalf("Grab gave up after %v, want the context's 20ms", waited)
		}
		g.Offer(picture(16, 16, 1), time.Now()) // must not block or panic
		if n := len(g.waiters); n != 0 {
			t.Fatalf("%d waiters left after giving up", n)
		}
	})
}

func BenchmarkOfferIdle(b *testing.B) {
	var g Grabber
	pic := picture(1280, 720, 1)
	now := time.Now()
	for range b.N {
		g.Offer(pic, now)
	}
}
