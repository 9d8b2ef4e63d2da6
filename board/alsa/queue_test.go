package alsa

import (
	"slices"
	"testing"
)

func TestQueue(t *testing.T) {
	q := newQueue(4)
	q.push([]int16{1, 2, 3})
	out := make([]int16, 2)
	if n := q.pull(out); n != 2 || !slices.Equal(out, []int16{1, 2}) {
		t.Fatalf("%d %v", n, out)
	}
	q.push([]int16{4, 5, 6, 7}) // 3,4,5,6,7: the oldest (3) dropped
	out = make([]int16, 6)
	if n := q.pull(out); n != 4 || !slices.Equal(out, []int16{4, 5, 6, 7, 0, 0}) || q.dropped != 1 {
		t.Fatalf("%d %v, dropped %d", n, out, q.dropped)
	}
	q.push([]int16{8, 9, 10, 11, 12, 13}) // longer than the buffer
	if n := q.pull(out); n != 4 || !slices.Equal(out[:4], []int16{10, 11, 12, 13}) || q.dropped != 3 {
		t.Fatalf("%d %v, dropped %d", n, out, q.dropped)
	}
}
