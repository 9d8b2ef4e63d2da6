package update_test

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"aead.dev/minisign"

	"github.com/camd-project/camd/update"
)

// countingTransport answers every request 404 and remembers when it was
// asked: the update server as seen from the camera.
type countingTransport struct {
	mu    sync.Mutex
	times []time.Time
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if strings.HasSuffix(r.URL.Path, ".json") { // the feed, not its signature
		c.times = append(c.times, time.Now())
	}
	return &http.Response{StatusCode: 404, Status: "404 Not Found", Body: io.NopCloser(strings.NewReader("")), Request: r}, nil
}

func (c *countingTransport) checks() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Time(nil), c.times...)
}

// Nothing is contacted while checking is off, days on end and when asked
// to check; once on, the feed is checked daily with jitter; off again,
// never again.
func TestScheduleChecksDailyOnlyWhenOn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pub, _, _ := minisign.GenerateKey(rand.Reader)
		server := &countingTransport{}
		u, err := update.New(update.Options{
			FeedURL: "https://updates.invalid/feed.json", Keys: []minisign.PublicKey{pub}, Version: "1.0.0",
			Dir: t.TempDir(), Client: &http.Client{Transport: server},
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { u.Run(ctx); close(done) }()

		time.Sleep(72 * time.Hour)
		if _, err := u.Check(ctx); !errors.Is(err, update.ErrOff) {
			t.Fatalf("check while off: %v", err)
		}
		if n := len(server.checks()); n != 0 {
			t.Fatalf("%d requests while checking was off", n)
		}

		on := time.Now()
		u.SetEnabled(true)
		synctest.Wait()
		if next := u.Status().NextCheck; next.Before(on) || next.After(on.Add(time.Hour)) {
			t.Fatalf("first check at +%s, want within the hour's jitter", next.Sub(on))
		}
		time.Sleep(4*24*time.Hour + time.Minute)
		checks := server.checks()
		if len(checks) < 4 || len(checks) > 5 {
			t.Fatalf("%d checks in 4 days", len(checks))
		}
		if first := checks[0].Sub(on); first >= time.Hour {
			t.Errorf("first check %s after turning on", first)
		}
		jitters := map[time.Duration]bool{}
		for i := 1; i < len(checks); i++ {
			gap := checks[i].Sub(checks[i-1])
			if gap < 24*time.Hour || gap >= 25*time.Hour {
				t.Errorf("check %d came %s after the one before, want 24 h plus up to 1 h", i, gap)
			}
			jitters[gap] = true
		}
		if len(jitters) < 2 {
			t.Errorf("every gap is the same (%v): no jitter", jitters)
		}

		u.SetEnabled(false)
		synctest.Wait()
		n := len(server.checks())
		time.Sleep(72 * time.Hour)
		if got := len(server.checks()); got != n {
			t.Fatalf("%d requests after checking was turned off", got-n)
		}
		cancel()
		<-done
	})
}
