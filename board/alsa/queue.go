package alsa

import "sync"

// queue is a bounded FIFO of samples: push drops the oldest when full,
// pull fills what it lacks with silence.
type queue struct {
	mu      sync.Mutex
	buf     []int16 // ring
	r, n    int     // read index, samples held
	dropped uint64
}

func newQueue(size int) *queue { return &queue{buf: make([]int16, size)} }

func (q *queue) push(pcm []int16) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(pcm) > len(q.buf) {
		q.dropped += uint64(len(pcm) - len(q.buf))
		pcm = pcm[len(pcm)-len(q.buf):]
	}
	if over := q.n + len(pcm) - len(q.buf); over > 0 {
		q.r = (q.r + over) % len(q.buf)
		q.n -= over
		q.dropped += uint64(over)
	}
	for _, s := range pcm {
		q.buf[(q.r+q.n)%len(q.buf)] = s
		q.n++
	}
}

// pull fills out with the oldest samples, then silence; it returns how
// many were samples.
func (q *queue) pull(out []int16) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	k := min(len(out), q.n)
	for i := range k {
		out[i] = q.buf[(q.r+i)%len(q.buf)]
	}
	clear(out[k:])
	q.r = (q.r + k) % len(q.buf)
	q.n -= k
	return k
}
