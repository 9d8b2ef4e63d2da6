package h264_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/camd-project/camd/media/h264"
)

func ExampleSplitter() {
	start := []byte{0, 0, 0, 1}
	stream := bytes.Join([][]byte{
		nil,
		{0x67, 0x64, 0x00, 0x0d, 0xac, 0xb2, 0x02, 0x83, 0xf6, 0x02, 0x20, 0x00, // SPS
			0x00, 0x03, 0x00, 0x20, 0x00, 0x00, 0x07, 0x81, 0xe2, 0x85, 0x49},
		{0x68, 0xeb, 0xc3, 0xcb, 0x22, 0xc0}, // PPS
		{0x65, 0x88, 0x84, 0x21},             // IDR slice
		{0x41, 0x9a, 0x21, 0x6c},             // P slice
		{0x41, 0x9a, 0x42, 0x3c},             // P slice, the last: dropped
	}, start)

	s := h264.NewSplitter(bytes.NewReader(stream))
	for {
		au, err := s.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("%d bytes, key %v, SPS %v\n", len(au.Data), au.Key, au.HasSPS)
		if au.HasSPS {
			info, err := h264.ParseSPS(h264.NALUs(au.Data)[0])
			if err != nil {
				fmt.Println(err)
				return
			}
			fmt.Println(info)
		}
	}
	if n := s.Stats().DroppedTail; n > 0 {
		fmt.Printf("final access unit dropped (%d bytes)\n", n)
	}
	// Output:
	// 45 bytes, key true, SPS true
	// 320x240 High 1.3 30fps
	// 8 bytes, key false, SPS false
	// final access unit dropped (8 bytes)
}

func ExampleParamSets() {
	var params h264.ParamSets
	sps := []byte{0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1e, 0xda, 0x02, 0x80, 0xf6, 0x40}
	pps := []byte{0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80}
	idr := []byte{0, 0, 0, 1, 0x65, 0x88, 0x84, 0x21}

	// The encoder sent its parameter sets once, with the first keyframe...
	params.Complete(h264.AccessUnit{Data: append(append(sps, pps...), idr...), Key: true, HasSPS: true, HasPPS: true})
	// ...so later keyframes get them back.
	au := params.Complete(h264.AccessUnit{Data: idr, Key: true})
	fmt.Println(len(au.Data), au.HasSPS, au.HasPPS)
	// Output: 29 true true
}
