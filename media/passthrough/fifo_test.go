//go:build unix

package passthrough_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/camd-project/camd/media/h264"
	"github.com/camd-project/camd/media/h264/h264test"
	"github.com/camd-project/camd/media/passthrough"
)

func mkfifo(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "video.fifo")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// writeFIFO writes data into a named pipe in odd chunk sizes, waiting now
// and then until the reader has read everything (so that it sees the
// stream arrive in pieces), and closes it unless hold is set (then it
// closes when the test ends). It returns when the reader went away or
// everything is written.
func writeFIFO(t *testing.T, path string, data []byte, hold bool) <-chan error {
	done := make(chan error, 1)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	go func() {
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			done <- err
			return
		}
		defer f.Close()
		sizes := []int{1, 7, 4096, 13, 1500, 3, 65536, 2}
		for i := 0; len(data) > 0; i++ {
			n := min(sizes[i%len(sizes)], len(data))
			if _, err := f.Write(data[:n]); err != nil {
				done <- err
				return
			}
			data = data[n:]
			if i%8 == 0 {
				poll(release, func() bool { return unread(f) <= 0 })
			}
		}
		if hold {
			<-release
		}
		done <- nil
	}()
	return done
}

// poll waits until cond holds or stop is closed. It is for conditions
// that nothing signals: the state of a pipe, or of a system call.
func poll(stop <-chan struct{}, cond func() bool) bool {
	tick := time.NewTicker(100 * time.Microsecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-stop:
			return false
		case <-tick.C:
		}
	}
	return true
}

// waitOpening waits until a goroutine of openFIFO is blocked opening the
// pipe (in open(2), waiting for a writer).
func waitOpening(t *testing.T) {
	t.Helper()
	opening := func() bool {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		for g := range bytes.SplitSeq(buf, []byte("\n\n")) {
			if bytes.Contains(g, []byte("[syscall")) && bytes.Contains(g, []byte("passthrough.openFIFO")) {
				return true
			}
		}
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if !poll(ctx.Done(), opening) {
		t.Fatal("Run did not reach open(2) on the pipe")
	}
}

// TestFIFO reads a named pipe written in odd chunks: frames come out as
// written, as fast as they come, with arrival timestamps.
func TestFIFO(t *testing.T) {
	stream := h264test.Stream{Frames: 60, GOP: 15}
	_, data := encode(t, stream)
	path := mkfifo(t)
	log, logs := newLogger()
	pub := newPublisher()
	run := start(t, mustNew(t, passthrough.Options{FIFO: path, Logger: log}), pub)
	wrote := writeFIFO(t, path, data, false)
	err := run.result(t, 10*time.Second)
	if !errors.Is(err, io.EOF) || !strings.HasPrefix(err.Error(), "passthrough: fifo:") {
		t.Fatalf("Run: %v, want a passthrough error wrapping io.EOF", err)
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	frames := pub.Frames()
	if len(frames) != stream.Frames-1 || !bytes.HasPrefix(data, concat(frames)) {
		t.Fatalf("%d frames (want %d), or they differ from what was written", len(frames), stream.Frames-1)
	}
	for i, f := range frames {
		if f.Key != (i%stream.GOP == 0) {
			t.Errorf("frame %d: key %v", i, f.Key)
		}
		if i > 0 && f.PTS <= frames[i-1].PTS {
			t.Errorf("frame %d: PTS %v after %v", i, f.PTS, frames[i-1].PTS)
		}
	}
	if frames[0].PTS != 0 {
		t.Errorf("first PTS %v", frames[0].PTS)
	}
	// Not paced: 60 frames at 30 fps would take 2 s.
	if took := pub.times[len(frames)-1].Sub(pub.times[0]); took > time.Second {
		t.Errorf("live input took %v: paced?", took)
	}
	if strings.Count(logs.String(), "final access unit dropped") != 1 {
		t.Errorf("log:\n%s", logs)
	}

	// The next run waits for the next writer.
	pub2 := newPublisher()
	run2 := start(t, mustNew(t, passthrough.Options{FIFO: path}), pub2)
	writeFIFO(t, path, data[:len(data)/2], false)
	if err := run2.result(t, 10*time.Second); !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	if len(pub2.Frames()) == 0 {
		t.Fatal("second run published nothing")
	}
}

// TestFIFOCancel: cancelling ends a run that waits for a writer, or for
// data, at once and leaves no goroutine behind (see TestMain).
func TestFIFOCancel(t *testing.T) {
	t.Run("opening", func(t *testing.T) {
		path := mkfifo(t)
		run := start(t, mustNew(t, passthrough.Options{FIFO: path}), newPublisher())
		waitOpening(t)
		if err := run.stop(t); !errors.Is(err, context.Canceled) {
			t.Fatalf("Run: %v", err)
		}
	})
	t.Run("cancelled before", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := mustNew(t, passthrough.Options{FIFO: mkfifo(t)}).Run(ctx, newPublisher())
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Run: %v", err)
		}
	})
	t.Run("reading", func(t *testing.T) {
		_, data := encode(t, h264test.Stream{Frames: 10})
		path := mkfifo(t)
		pub := newPublisher()
		run := start(t, mustNew(t, passthrough.Options{FIFO: path}), pub)
		wrote := writeFIFO(t, path, data, true)
		pub.wait(t, 9, 5*time.Second)
		if err := run.stop(t); !errors.Is(err, context.Canceled) {
			t.Fatalf("Run: %v", err)
		}
		_ = wrote
	})
}

func TestFIFONotH264(t *testing.T) {
	path := mkfifo(t)
	run := start(t, mustNew(t, passthrough.Options{FIFO: path}), newPublisher())
	writeFIFO(t, path, bytes.Repeat([]byte("not video "), 10000), false)
	err := run.result(t, 5*time.Second)
	if !errors.Is(err, h264.ErrNotH264) || !strings.HasPrefix(err.Error(), "passthrough: fifo:") {
		t.Fatalf("Run: %v", err)
	}
}

func TestFIFOMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "later.fifo")
	err := mustNew(t, passthrough.Options{FIFO: path}).Run(context.Background(), newPublisher())
	if !errors.Is(err, os.ErrNotExist) || !strings.HasPrefix(err.Error(), "passthrough: fifo:") {
		t.Fatalf("Run: %v", err)
	}
}
