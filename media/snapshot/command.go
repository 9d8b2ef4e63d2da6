package snapshot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/jpeg"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// MaxCommandJPEG bounds what a snapshot command may print (16 MiB).
const MaxCommandJPEG = 16 << 20

// ErrCommand marks a snapshot command that failed or printed no JPEG.
var ErrCommand = errors.New("snapshot: command")

// Command takes snapshots where the source gives no raw pictures (a
// hardware-encoded passthrough stream) by running a program that prints
// one JPEG on its standard output: the SoC vendor's JPEG tool, or a decoder
// such as `ffmpeg -f h264 -i - -frames:v 1 -f mjpeg -` on a host. The
// program reads the stream's newest keyframe (Annex-B: SPS, PPS and IDR)
// on its standard input; a hardware tool may ignore it.
//
// One command runs at a time: callers that ask together share its result.
type Command struct {
	// Argv is the program and its arguments.
	Argv []string
	// Keyframe returns the newest keyframe and when it was captured
	// (nil when there is none yet).
	Keyframe func() ([]byte, time.Time)
	// MaxBytes bounds the JPEG (default MaxCommandJPEG).
	MaxBytes int

	mu      sync.Mutex
	running *commandRun
}

type commandRun struct {
	callers int // that share the run; guarded by Command.mu
	done    chan struct{}
	jpg     []byte
	at      time.Time
	err     error
}

// JPEG runs the command once (or joins a run in progress) and returns the
// JPEG it printed. The quality is the program's to choose.
func (c *Command) JPEG(ctx context.Context, _ int) ([]byte, time.Time, error) {
	c.mu.Lock()
	run := c.running
	if run == nil {
		run = &commandRun{done: make(chan struct{})}
		c.running = run
		// The run is not tied to the first caller's context: a caller
		// that gives up must not cancel it for the others. Its own
		// deadline bounds it.
		go func() {
			rctx, cancel := context.WithTimeout(context.Background(), commandTimeout(ctx))
			run.jpg, run.at, run.err = c.run(rctx)
			cancel()
			c.mu.Lock()
			c.running = nil
			c.mu.Unlock()
			close(run.done)
		}()
	}
	run.callers++
	c.mu.Unlock()
	select {
	case <-run.done:
		return run.jpg, run.at, run.err
	case <-ctx.Done():
		return nil, time.Time{}, fmt.Errorf("%w: %v", ErrNoPicture, ctx.Err())
	}
}

// commandTimeout is the caller's deadline, or 5 s without one.
func commandTimeout(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return max(time.Until(d), 100*time.Millisecond)
	}
	return 5 * time.Second
}

func (c *Command) run(ctx context.Context) ([]byte, time.Time, error) {
	if len(c.Argv) == 0 {
		return nil, time.Time{}, fmt.Errorf("%w: none configured", ErrCommand)
	}
	var key []byte
	at := time.Now()
	if c.Keyframe != nil {
		if k, kat := c.Keyframe(); k != nil {
			key, at = k, kat
		}
	}
	limit := c.MaxBytes
	if limit <= 0 {
		limit = MaxCommandJPEG
	}
	cmd := exec.CommandContext(ctx, c.Argv[0], c.Argv[1:]...)
	cmd.Stdin = bytes.NewReader(key)
	out := &limitedBuffer{max: limit}
	errOut := &limitedBuffer{max: 4096}
	cmd.Stdout, cmd.Stderr = out, errOut
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	name := c.Argv[0]
	switch {
	case out.over:
		return nil, time.Time{}, fmt.Errorf("%w: %s printed more than %d bytes", ErrCommand, name, limit)
	case ctx.Err() != nil:
		return nil, time.Time{}, fmt.Errorf("%w: %s took too long: %v", ErrCommand, name, ctx.Err())
	case err != nil:
		return nil, time.Time{}, fmt.Errorf("%w: %s: %v%s", ErrCommand, name, err, lastLine(errOut.String()))
	}
	jpg := out.Bytes()
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(jpg))
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("%w: %s printed no JPEG (%d bytes): %v", ErrCommand, name, len(jpg), err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, time.Time{}, fmt.Errorf("%w: %s printed a JPEG of %dx%d", ErrCommand, name, cfg.Width, cfg.Height)
	}
	return jpg, at, nil
}

// lastLine is the last line of a program's error output, for the error.
func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}

// limitedBuffer keeps up to max bytes, notes that more came and discards
// the rest, so that the program is not blocked on a full pipe.
// It is not a bytes.Buffer, whose ReadFrom would bypass the bound.
type limitedBuffer struct {
	buf  bytes.Buffer
	max  int
	over bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if b.buf.Len()+len(p) > b.max {
		b.over = true
		return len(p), nil
	}
	return b.buf.Write(p)
}

func (b *limitedBuffer) Bytes() []byte  { return b.buf.Bytes() }
func (b *limitedBuffer) String() string { return b.buf.String() }
