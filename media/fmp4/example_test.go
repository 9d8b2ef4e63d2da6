package fmp4_test

import (
	"fmt"
	"time"

	"github.com/camd-project/camd/media/fmp4"
	"github.com/camd-project/camd/media/fmp4/fmp4test"
)

// A Fragmenter turns the frames a hub consumer receives into fragments of
// about 0.9 s that start on keyframes.
func ExampleFragmenter() {
	src := &fmp4test.Source{FPS: 30, GOP: 30, Audio: true, Start: time.Date(2025, 6, 1, 8, 0, 0, 0, time.UTC)}
	fr := fmp4.New(fmp4.Options{})
	for _, f := range src.Frames(3 * time.Second) {
		if frag := fr.Push(f); frag != nil {
			fmt.Println(frag.Start.Format("15:04:05.000"), frag.Duration, frag.Key, frag.VideoFrames, "pictures", frag.AudioFrames, "audio packets")
		}
	}
	// Output:
	// 08:00:00.000 1s true 30 pictures 50 audio packets
	// 08:00:01.000 1s true 30 pictures 50 audio packets
}
