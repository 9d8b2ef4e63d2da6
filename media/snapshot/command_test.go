package snapshot

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

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
	start := time.Now()
	_, _, err := c.JPEG(ctx, 0)
	if !errors.Is(err, ErrNoPicture) {
		t.Fatalf("err = %v, want ErrNoPicture", err)
	}
	if waited := time.Since(start); waited > 5*time.Second {
		t.Fatalf("waited %v for a hung command", waited)
	}
	// The hung run ends at its deadline; the next snapshot runs anew.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c.mu.Lock()
		running := c.running != nil
		c.mu.Unlock()
		if !running {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the hung command was not killed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.Argv[2] = strings.Replace(c.Argv[2], "sleep 30; ", "", 1)
	if _, _, err := c.JPEG(context.Background(), 0); err != nil {
		t.Fatalf("after a hung run: %v", err)
	}
}

func TestCommandCallersTogetherShareOneRun(t *testing.T) {
	c, dir := script(t, "echo run >> runs; sleep 0.3; cat pic.jpg")
	var wg sync.WaitGroup
	errs := make(chan error, 5)
	for range 5 {
		wg.Go(func() {
			_, _, err := c.JPEG(context.Background(), 0)
			errs <- err
		})
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
