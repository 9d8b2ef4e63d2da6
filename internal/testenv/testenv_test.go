package testenv

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"
)

// recorder is a testing.TB that records how a test ended instead of
// ending the calling test.
type recorder struct {
	testing.TB
	ended string // "", "skip: ..." or "fatal: ..."
}

func (r *recorder) Helper() {}

func (r *recorder) Skip(args ...any) {
	r.ended = "skip: " + fmt.Sprint(args...)
	runtime.Goexit()
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.ended = "fatal: " + fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// run calls f with a recorder on a goroutine of its own, since Skip and
// Fatalf end it, and returns how it ended.
func run(f func(tb testing.TB)) string {
	r := &recorder{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	return r.ended
}

func TestNeed(t *testing.T) {
	tests := []struct {
		name    string
		require string
		ok      bool
		want    string
	}{
		{"present", "", true, ""},
		{"present required", "1", true, ""},
		{"missing", "", false, "skip: frobnicator missing"},
		{"missing required", "1", false, "fatal: frobnicator missing (CAMD_REQUIRE_TOOLS is set)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(RequireVar, tt.require)
			got := run(func(tb testing.TB) { Need(tb, tt.ok, "%s missing", "frobnicator") })
			if got != tt.want {
				t.Errorf("ended %q, want %q", got, tt.want)
			}
		})
	}
}

func TestTool(t *testing.T) {
	t.Setenv(RequireVar, "1")
	var path string
	if got := run(func(tb testing.TB) { path = Tool(tb, "go") }); got != "" || path == "" {
		t.Errorf("Tool(go) = %q, ended %q", path, got)
	}
	const want = "fatal: camd-no-such-tool not installed (scripts/install-deps.sh installs it) (CAMD_REQUIRE_TOOLS is set)"
	if got := run(func(tb testing.TB) { Tools(tb, "go", "camd-no-such-tool") }); got != want {
		t.Errorf("ended %q, want %q", got, want)
	}
}

func TestEventually(t *testing.T) {
	n := 0
	Eventually(t, "three polls", func() bool { n++; return n == 3 })
	if n != 3 {
		t.Fatalf("polled %d times, want 3", n)
	}
	// A binary whose deadline is 2 s away: Eventually gives up 1 s
	// before it (the least margin), saying what it waited for.
	r := &soonRecorder{end: time.Now().Add(2 * time.Second)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Eventually(r, "the impossible", func() bool { return false })
	}()
	<-done
	if r.ended != "fatal: never: the impossible" {
		t.Fatalf("a condition that never holds: %q", r.ended)
	}
}

// soonRecorder is a recorder in a test binary whose deadline is end.
type soonRecorder struct {
	recorder
	end time.Time
}

func (r *soonRecorder) Deadline() (time.Time, bool) { return r.end, true }

func TestContext(t *testing.T) {
	// A binary whose deadline is an hour away: the context ends a tenth
	// of that before it, at most half a minute (the margin).
	end := time.Now().Add(time.Hour)
	ctx, cancel := Context(&soonRecorder{end: end}, context.Background())
	defer cancel()
	d, ok := ctx.Deadline()
	if !ok || !d.Equal(end.Add(-30*time.Second)) {
		t.Fatalf("deadline %v (%v), want %v", d, ok, end.Add(-30*time.Second))
	}
	// Without a deadline it waits five minutes, and a parent that ends
	// sooner ends it.
	parent, stop := context.WithCancel(context.Background())
	ctx, cancel = Context(&recorder{}, parent)
	defer cancel()
	if d, ok := ctx.Deadline(); !ok || time.Until(d) < 4*time.Minute {
		t.Fatalf("without a binary deadline: %v (%v)", d, ok)
	}
	stop()
	<-ctx.Done()
}
