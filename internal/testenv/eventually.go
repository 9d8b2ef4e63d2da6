package testenv

import (
	"context"
	"testing"
	"time"
)

// Eventually waits until cond holds, polling it, and fails tb with what
// if it never does. How long it waits is not a guess at how fast the
// host is: a loaded machine may take many times longer than an idle
// one, so it waits until shortly before the test binary's own deadline
// (go test -timeout), and for five minutes when there is none. A test
// that asserts how soon something happens measures the time itself.
func Eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	give := Until(tb)
	pause := time.Millisecond
	for !cond() {
		if time.Now().After(give) {
			tb.Fatalf("never: %s", what)
		}
		time.Sleep(pause)
		pause = min(2*pause, 50*time.Millisecond)
	}
}

// Until is when Eventually gives up waiting for tb: shortly before the
// test binary's deadline, or five minutes from now when it has none.
func Until(tb testing.TB) time.Time {
	if d, ok := deadline(tb); ok {
		return d.Add(-margin(time.Until(d)))
	}
	return time.Now().Add(5 * time.Minute)
}

// Context is parent ending when Eventually would give up (Until): for a
// test that waits on a call taking a context, not on a condition it
// polls.
func Context(tb testing.TB, parent context.Context) (context.Context, context.CancelFunc) {
	return context.WithDeadline(parent, Until(tb))
}

// deadline is the test binary's deadline, where tb is a *testing.T.
func deadline(tb testing.TB) (time.Time, bool) {
	if t, ok := tb.(interface{ Deadline() (time.Time, bool) }); ok {
		return t.Deadline()
	}
	return time.Time{}, false
}

// margin is what Eventually leaves before the deadline to say what it
// waited for and let the test clean up: a tenth of what is left, from
// one second to half a minute.
func margin(left time.Duration) time.Duration {
	return min(max(left/10, time.Second), 30*time.Second)
}
