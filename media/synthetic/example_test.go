//go:build cgo

package synthetic_test

import (
	"context"
	"fmt"
	"time"

	"github.com/camd-project/camd/media"
	"github.com/camd-project/camd/media/encoder"
	"github.com/camd-project/camd/media/synthetic"
)

// The synthetic camera publishing into a hub for two seconds, as camd runs
// it when no camera is configured.
func Example() {
	src, err := synthetic.New(synthetic.Options{Video: encoder.H264Options{Width: 320, Height: 240}})
	if err != nil {
		panic(err)
	}
	hub := media.NewHub(media.HubOptions{})
	viewer := hub.Subscribe(media.ConsumerOptions{Name: "example"})
	defer viewer.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	done := make(chan struct{})
	go func() {
		defer close(done)
		media.Supervise(ctx, src, hub, media.SuperviseOptions{})
	}()
	defer func() { cancel(); <-done }()

	f, _, err := viewer.Next(ctx)
	for err == nil && f.Kind != media.Video {
		f, _, err = viewer.Next(ctx)
	}
	if err != nil {
		panic(err)
	}
	fmt.Println("first video frame is a keyframe:", f.Key)
	// Output: first video frame is a keyframe: true
}
