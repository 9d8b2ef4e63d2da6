//go:build unix

package passthrough

import (
	"context"
	"os"
	"syscall"
	"time"
)

// openFIFO opens a named pipe for reading. Opening blocks until a writer
// opens the pipe too; when ctx ends first, openFIFO briefly opens the pipe
// for writing itself, which ends the blocked open, and returns ctx.Err().
func openFIFO(ctx context.Context, path string) (*os.File, error) {
	type result struct {
		f   *os.File
		err error
	}
	done := make(chan result, 1)
	go func() {
		f, err := os.OpenFile(path, os.O_RDONLY, 0)
		done <- result{f, err}
	}()
	select {
	case r := <-done:
		return r.f, r.err
	case <-ctx.Done():
	}
	// The opening goroutine may not have reached open(2) yet, in which case
	// a non-blocking open for writing fails (ENXIO): try until it returns.
	for {
		w, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0)
		select {
		case r := <-done:
			if w != nil {
				w.Close()
			}
			if r.f != nil {
				r.f.Close()
			}
			return nil, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
		if err == nil {
			w.Close()
		}
	}
}
