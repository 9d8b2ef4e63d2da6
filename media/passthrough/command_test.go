//go:build unix

package passthrough_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/camd-project/camd/media/h264"
	"github.com/camd-project/camd/media/h264/h264test"
	"github.com/camd-project/camd/media/passthrough"
)

func TestCommand(t *testing.T) {
	stream := h264test.Stream{Frames: 45, GOP: 15}
	path, data := encode(t, stream)

	t.Run("exits", func(t *testing.T) {
		pub := newPublisher()
		err := mustNew(t, passthrough.Options{Command: []string{"cat", path}}).Run(context.Background(), pub)
		if !errors.Is(err, io.EOF) || !strings.HasPrefix(err.Error(), "passthrough: command:cat: ") {
			t.Fatalf("Run: %v, want a passthrough error wrapping io.EOF", err)
		}
		frames := pub.Frames()
		if len(frames) != stream.Frames-1 || !bytes.HasPrefix(data, concat(frames)) {
			t.Fatalf("%d frames (want %d), or they differ from the stream", len(frames), stream.Frames-1)
		}
		for i, f := range frames {
			if f.Key != (i%stream.GOP == 0) {
				t.Errorf("frame %d: key %v", i, f.Key)
			}
		}
	})
	t.Run("fails", func(t *testing.T) {
		pub := newPublisher()
		script := `cat "$1"; echo "encoder: device lost" >&2; exit 3`
		err := mustNew(t, passthrough.Options{Command: []string{"sh", "-c", script, "sh", path}}).Run(context.Background(), pub)
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 3 || !strings.Contains(err.Error(), "encoder: device lost") ||
			!strings.HasPrefix(err.Error(), "passthrough: command:sh: exit status 3") {
			t.Fatalf("Run: %v", err)
		}
		if len(pub.Frames()) != stream.Frames-1 {
			t.Fatalf("%d frames", len(pub.Frames()))
		}
	})
	t.Run("not H.264", func(t *testing.T) {
		// The command keeps writing garbage; Run must stop it.
		script := `echo starting >&2; while :; do echo "not a video stream"; done`
		began := time.Now()
		err := mustNew(t, passthrough.Options{Command: []string{"sh", "-c", script}}).Run(context.Background(), newPublisher())
		if !errors.Is(err, h264.ErrNotH264) || !strings.HasPrefix(err.Error(), "passthrough: command:sh: ") ||
			!strings.Contains(err.Error(), "starting") {
			t.Fatalf("Run: %v", err)
		}
		if took := time.Since(began); took > 2*time.Second {
			t.Errorf("took %v to stop the command", took)
		}
	})
	t.Run("closes its output and lingers", func(t *testing.T) {
		script := `cat "$1"; exec >&-; sleep 60`
		err := mustNew(t, passthrough.Options{Command: []string{"sh", "-c", script, "sh", path}}).Run(context.Background(), newPublisher())
		if err == nil || !strings.Contains(err.Error(), "signal: terminated") {
			t.Fatalf("Run: %v", err)
		}
	})
}

// TestCommandCancel: cancelling kills the command, with the children that
// hold its output open, at once.
func TestCommandCancel(t *testing.T) {
	stream := h264test.Stream{Frames: 20}
	path, _ := encode(t, stream)
	// sleep inherits the standard output: only killing the process group
	// closes the pipe.
	script := `sleep 60 & cat "$1"; wait`
	pub := newPublisher()
	log, logs := newLogger()
	run := start(t, mustNew(t, passthrough.Options{Command: []string{"sh", "-c", script, "sh", path}, Logger: log}), pub)
	pub.wait(t, stream.Frames-1, 5*time.Second)
	began := time.Now()
	if err := run.stop(t); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
	if took := time.Since(began); took > 500*time.Millisecond {
		t.Errorf("cancel took %v", took)
	}
	if strings.Contains(logs.String(), "dropped") {
		t.Errorf("a cancelled run dropped nothing:\n%s", logs)
	}
}

func TestCommandStderrLogged(t *testing.T) {
	log, logs := newLogger()
	script := `printf 'line one\nline two\r\nno newline' >&2; exit 1`
	err := mustNew(t, passthrough.Options{Command: []string{"sh", "-c", script}, Logger: log}).Run(context.Background(), newPublisher())
	if err == nil {
		t.Fatal("Run returned nil")
	}
	for _, line := range []string{`line="line one"`, `line="line two"`, `line="no newline"`} {
		if !strings.Contains(logs.String(), line) {
			t.Errorf("log lacks %s:\n%s", line, logs)
		}
	}
}
