package snapshot

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// script is a Command running a shell script in a directory holding a
// JPEG of 64x48 (pic.jpg) and the same with a size of 0x0 in its frame
// header (zero.jpg).
func script(t *testing.T, body string) (*Command, string) {
	t.Helper()
	dir := t.TempDir()
	jpg, err := Encode(picture(64, 48, 90), 0)
	if err != nil {
		t.Fatal(err)
	}
	zero := bytes.Clone(jpg)
	sof := bytes.Index(zero, []byte{0xff, 0xc0}) // length 2, precision 1, height 2, width 2
	copy(zero[sof+5:sof+9], []byte{0, 0, 0, 0})
	for name, b := range map[string][]byte{"pic.jpg": jpg, "zero.jpg": zero} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return &Command{Argv: []string{"/bin/sh", "-c", "cd " + dir + " && " + body}}, dir
}

func TestCommandPrintsJPEGOfTheNewestKeyframe(t *testing.T) {
	c, dir := script(t, "cat > in.h264; cat pic.jpg")
	key := []byte{0, 0, 0, 1, 0x67, 1, 2, 0, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 4, 5}
	captured := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	c.Keyframe = func() ([]byte, time.Time) { return key, captured }
	jpg, at, err := c.JPEG(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(filepath.Join(dir, "pic.jpg"))
	if !bytes.Equal(jpg, want) {
		t.Fatalf("got %d bytes, want the %d the command printed", len(jpg), len(want))
	}
	if !at.Equal(captured) {
		t.Fatalf("captured %v, want the keyframe's %v", at, captured)
	}
	in, _ := os.ReadFile(filepath.Join(dir, "in.h264"))
	if !bytes.Equal(in, key) {
		t.Fatalf("the command read %x on stdin, want the keyframe %x", in, key)
	}
}

func TestCommandFailuresAreClearErrors(t *testing.T) {
	for _, tc := range []struct {
		name, body, want string
		max              int
	}{
		{"not a JPEG", "echo hello", "printed no JPEG", 0},
		{"nothing printed", "true", "printed no JPEG", 0},
		{"picture of no size", "cat zero.jpg", "a JPEG of 0x0", 0},
		{"exit status", "echo 'sensor not ready' >&2; exit 3", "sensor not ready", 0},
		{"too big", "cat pic.jpg pic.jpg pic.jpg", "printed more than", 100},
		{"missing program", "exec /nonexistent/snap", "exit status 127", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := script(t, tc.body)
			c.MaxBytes = tc.max
			_, _, err := c.JPEG(context.Background(), 0)
			if !errors.Is(err, ErrCommand) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrCommand saying %q", err, tc.want)
			}
		})
	}
	if _, _, err := (&Command{}).JPEG(context.Background(), 0); !errors.Is(err, ErrCommand) {
		t.Fatalf("no argv: err = %v", err)
	}
}

func TestCommandThatHangsIsKilledAtTheDeadline(t *testing.T) {
	c, _ := script(t, "sleep 30; cat pic.jpg")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	// The caller gets its answer at its own deadline, not when the
	// command ends (which would be ErrCommand).
	if _, _, err := c.JPEG(ctx, 0); !errors.Is(err, ErrNoPicture) {
		t.Fatalf("err = %v, want ErrNoPicture", err)
	}
	// The hung run ends at its deadline; the next snapshot runs anew.
	waitRun(t, c, "the hung command to be killed", func(run *commandRun) bool { return run == nil })
	c.Argv[2] = strings.Replace(c.Argv[2], "sleep 30; ", "", 1)
	if _, _, err := c.JPEG(context.Background(), 0); err != nil {
		t.Fatalf("after a hung run: %v", err)
	}
}

func TestCommandCallersTogetherShareOneRun(t *testing.T) {
	gate := filepath.Join(t.TempDir(), "gate")
	if err := syscall.Mkfifo(gate, 0o600); err != nil {
		t.Fatal(err)
	}
	// The command waits for the gate to open, after every caller joined.
	c, dir := script(t, "echo run >> runs; read x < "+gate+"; cat pic.jpg")
	var wg sync.WaitGroup
	errs := make(chan error, 5)
	for range 5 {
		wg.Go(func() {
			_, _, err := c.JPEG(context.Background(), 0)
			errs <- err
		})
	}
	waitRun(t, c, "5 callers to share the run", func(run *commandRun) bool { return run != nil && run.callers == 5 })
	if err := os.WriteFile(gate, []byte("open\n"), 0); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	runs, _ := os.ReadFile(filepath.Join(dir, "runs"))
	if n := strings.Count(string(runs), "run"); n != 1 {
		t.Fatalf("5 callers together ran the command %d times, want 1", n)
	}
}

// waitRun polls the command's run in progress until cond holds, at most
// until shortly before the test's deadline.
func waitRun(t *testing.T, c *Command, what string, cond func(*commandRun) bool) {
	t.Helper()
	end := time.Now().Add(time.Hour)
	if d, ok := t.Deadline(); ok {
		end = d.Add(-5 * time.Second)
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		c.mu.Lock()
		ok := cond(c.running)
		c.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}
