//go:build cgo

package synthetic

import (
	"context"
	"image"
	"sync"
	"testing"
	"time"
)

// TestRawSeesEveryPictureBeforeItIsPublished: snapshots and motion
// detection get the picture that is encoded, before its frame goes out.
func TestRawSeesEveryPictureBeforeItIsPublished(t *testing.T) {
	var mu sync.Mutex
	var raws []time.Time
	var size image.Rectangle
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	src, err := New(Options{NoAudio: true, Raw: func(pic *image.YCbCr, captured time.Time) {
		mu.Lock()
		raws = append(raws, captured)
		size = pic.Rect
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	pub := &fakePub{until: func(video, _ int) bool { return video >= 10 }, stop: cancel}
	src.Run(ctx, pub)
	mu.Lock()
	defer mu.Unlock()
	pub.mu.Lock()
	defer pub.mu.Unlock()
	if len(raws) < len(pub.video) || size.Dx() != 640 || size.Dy() != 480 {
		t.Fatalf("%d raw pictures (%v) for %d frames", len(raws), size, len(pub.video))
	}
	seen := map[time.Time]bool{}
	for _, r := range raws {
		seen[r] = true
	}
	for i, f := range pub.video { // the rate control may skip a picture, never add one
		if !seen[f.Captured] {
			t.Fatalf("frame %d (captured %v) was not offered raw", i, f.Captured)
		}
	}
}
