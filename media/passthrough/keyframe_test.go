package passthrough_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/camd-project/camd/internal/testenv"
	"github.com/camd-project/camd/media/h264/h264test"
	"github.com/camd-project/camd/media/passthrough"
)

// lines reads a file of lines, empty when it is missing.
func lines(path string) []string {
	b, _ := os.ReadFile(path)
	return strings.Fields(string(b))
}

// TestKeyframeCommand: with a keyframe command the source says it can be
// asked for a keyframe; each request runs the command with the encoder's
// process ID in CAMD_SOURCE_PID, and requests that come while it runs
// become one more run.
func TestKeyframeCommand(t *testing.T) {
	path, _ := encode(t, h264test.Stream{Frames: 30, GOP: 15})
	dir := t.TempDir()
	asked, gate := filepath.Join(dir, "asked"), filepath.Join(dir, "gate")
	// The encoder writes its stream and stays; the keyframe command
	// notes the PID it was given, then waits for the gate.
	src := mustNew(t, passthrough.Options{
		Command:         []string{"sh", "-c", `cat "$1"; exec sleep 600`, "sh", path},
		KeyframeCommand: []string{"sh", "-c", `echo "$CAMD_SOURCE_PID" >> "$1"; while [ ! -e "$2" ]; do sleep 0.01; done`, "sh", asked, gate},
	})
	if mustNew(t, passthrough.Options{Command: []string{"cat"}}).Info().RequestKeyframe != nil {
		t.Fatal("a source without a keyframe command says it can be asked for one")
	}
	info := src.Info()
	if info.RequestKeyframe == nil || info.ForcesKeyframes {
		t.Fatalf("info %+v: want a source that can be asked for keyframes and does not encode", info)
	}
	pub := newPublisher()
	run := start(t, src, pub)
	pub.wait(t, 15, time.Until(testenv.Until(t)))

	info.RequestKeyframe()
	testenv.Eventually(t, "the keyframe command runs", func() bool { return len(lines(asked)) == 1 })
	pid := lines(asked)[0]
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%s/cmdline", pid))
	if err != nil || !strings.Contains(string(cmdline), "600") {
		t.Fatalf("CAMD_SOURCE_PID %q is not the encoder's process: %q, %v", pid, cmdline, err)
	}
	// Five requests while the command runs: one more run.
	for range 5 {
		info.RequestKeyframe()
	}
	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the requests that came meanwhile run once", func() bool { return len(lines(asked)) == 2 })
	if err := run.stop(t); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
	if n := len(lines(asked)); n != 2 {
		t.Fatalf("the keyframe command ran %d times for 6 requests, 5 of them while it ran: want 2", n)
	}
}

// TestKeyframeCommandFails: a command that fails is a warning once, then
// debug lines, and never stops the stream.
func TestKeyframeCommandFails(t *testing.T) {
	path, _ := encode(t, h264test.Stream{Frames: 30, GOP: 15})
	log, buf := newLogger()
	src := mustNew(t, passthrough.Options{File: path, KeyframeCommand: []string{"sh", "-c", "echo no encoder here; exit 4"}, Logger: log})
	pub := newPublisher()
	start(t, src, pub)
	ask := src.Info().RequestKeyframe
	ask()
	testenv.Eventually(t, "the failure logged", func() bool { return strings.Contains(buf.String(), "keyframe command failed") })
	ask()
	testenv.Eventually(t, "the second failure logged", func() bool { return strings.Count(buf.String(), "keyframe command failed") == 2 })
	out := buf.String()
	if strings.Count(out, "level=WARN") != 1 || !strings.Contains(out, "no encoder here") || !strings.Contains(out, "exit status 4") {
		t.Fatalf("log:\n%s", out)
	}
	pub.wait(t, 20, time.Until(testenv.Until(t)))
}

func TestKeyframeCommandValidated(t *testing.T) {
	for _, argv := range [][]string{{""}, {"camd-no-such-program"}} {
		_, err := passthrough.New(passthrough.Options{File: "x", KeyframeCommand: argv})
		if !errors.Is(err, passthrough.ErrInvalidOptions) || !strings.Contains(err.Error(), "KeyframeCommand") {
			t.Errorf("KeyframeCommand %q: %v", argv, err)
		}
	}
}
