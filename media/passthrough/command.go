package passthrough

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"sync"
	"time"
)

// waitDelay is how long a command may take to exit after it was signalled
// or closed its output, before it is killed and its pipes closed.
const waitDelay = 2 * time.Second

// stderrTail is how much of a command's standard error goes into its
// error.
const stderrTail = 1024

func (s *Source) runCommand(ctx context.Context, r *run) error {
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	argv := s.opts.Command
	cmd := exec.CommandContext(cctx, argv[0], argv[1:]...)
	ownProcessGroup(cmd)
	cmd.WaitDelay = waitDelay
	stderr := &tailWriter{log: s.log}
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("passthrough: %s: %w", s.name, err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("passthrough: %s: %w", s.name, err)
	}
	s.pid.Store(int32(cmd.Process.Pid))
	defer s.pid.Store(0)
	// Closing the pipe unblocks a read in progress.
	stop := context.AfterFunc(cctx, func() { out.Close() })
	defer stop()

	_, perr := r.pass(cctx, out)
	if perr == io.EOF {
		// The command closed its output: give it time to exit by itself.
		t := time.AfterFunc(waitDelay, cancel)
		defer t.Stop()
	} else {
		cancel()
	}
	werr := cmd.Wait()
	stderr.flush()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	tail := stderr.tail()
	switch {
	case perr != io.EOF:
		return withStderr(perr, tail)
	case werr != nil:
		return withStderr(fmt.Errorf("passthrough: %s: %w", s.name, werr), tail)
	}
	return withStderr(fmt.Errorf("passthrough: %s: command exited: %w", s.name, io.EOF), tail)
}

// withStderr appends what a command printed last to its error.
func withStderr(err error, tail string) error {
	if tail == "" {
		return err
	}
	return &stderrError{err: err, stderr: tail}
}

type stderrError struct {
	err    error
	stderr string
}

func (e *stderrError) Error() string { return fmt.Sprintf("%v; stderr: %q", e.err, e.stderr) }
func (e *stderrError) Unwrap() error { return e.err }

// tailWriter logs a command's standard error line by line at debug level
// and keeps its last stderrTail bytes.
type tailWriter struct {
	log *slog.Logger

	mu   sync.Mutex
	line []byte
	last []byte
}

func (w *tailWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.last = append(w.last, p...)
	if len(w.last) > 2*stderrTail {
		w.last = append(w.last[:0], w.last[len(w.last)-stderrTail:]...)
	}
	w.line = append(w.line, p...)
	rest := w.line
	for {
		i := bytes.IndexAny(rest, "\r\n")
		if i < 0 {
			break
		}
		w.logLine(rest[:i])
		rest = rest[i+1:]
	}
	if len(rest) > stderrTail {
		w.logLine(rest)
		rest = nil
	}
	w.line = append(w.line[:0], rest...)
	return len(p), nil
}

func (w *tailWriter) logLine(b []byte) {
	if b = bytes.TrimSpace(b); len(b) > 0 {
		w.log.Debug("passthrough: command stderr", "line", string(b))
	}
}

// flush logs an unterminated last line.
func (w *tailWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.logLine(w.line)
	w.line = nil
}

// tail returns the last stderrTail bytes written, trimmed.
func (w *tailWriter) tail() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	b := w.last
	if len(b) > stderrTail {
		b = b[len(b)-stderrTail:]
	}
	return string(bytes.TrimSpace(b))
}
