package update_test

import (
	"bytes"
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
	"github.com/camd-project/camd/update/updatetest"
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

// stallingServer serves a signed feed, and an image whose answer stops
// after its first kilobyte and never ends.
type stallingServer struct {
	doc, sig, image []byte
}

func (s *stallingServer) RoundTrip(r *http.Request) (*http.Response, error) {
	var body io.ReadCloser
	switch {
	case strings.HasSuffix(r.URL.Path, ".minisig"):
		body = io.NopCloser(bytes.NewReader(s.sig))
	case strings.HasSuffix(r.URL.Path, ".json"):
		body = io.NopCloser(bytes.NewReader(s.doc))
	default:
		body = &stalling{first: s.image[:1000], ctx: r.Context()}
	}
	return &http.Response{StatusCode: 200, Status: "200 OK", Body: body, Request: r, ContentLength: -1}, nil
}

type stalling struct {
	first []byte
	ctx   context.Context
}

func (s *stalling) Read(p []byte) (int, error) {
	if len(s.first) > 0 {
		n := copy(p, s.first)
		s.first = s.first[n:]
		return n, nil
	}
	<-s.ctx.Done()
	return 0, s.ctx.Err()
}

func (s *stalling) Close() error { return nil }

// A download that receives nothing for a minute ends as truncated, its
// part kept.
func TestStalledDownloadEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pub, priv, _ := minisign.GenerateKey(rand.Reader)
		img := updatetest.Image("1.1.0", 5000)
		doc, sig := updatetest.Sign(priv, updatetest.Manifest("1.1.0", 1, img))
		events := newEvents()
		u, err := update.New(update.Options{
			FeedURL: "https://updates.invalid/feed.json", Keys: []minisign.PublicKey{pub}, Version: "1.0.0",
			Dir: t.TempDir(), Client: &http.Client{Transport: &stallingServer{doc, sig, img}}, Events: events,
			InstallCommand: []string{"true"},
		})
		if err != nil {
			t.Fatal(err)
		}
		u.SetEnabled(true)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { u.Run(ctx); close(done) }()
		if _, err := u.Check(ctx); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := u.Apply("1.1.0"); err != nil {
			t.Fatal(err)
		}
		for u.Status().State != update.Idle {
			synctest.Wait()
			time.Sleep(time.Second)
		}
		if waited := time.Since(start); waited < time.Minute || waited > time.Minute+2*time.Second {
			t.Errorf("ended after %s, want a minute", waited)
		}
		st := u.Status()
		if !strings.Contains(st.LastError, "nothing received for 1m0s") || st.Progress == nil || st.Progress.Done != 1000 {
			t.Fatalf("status: %+v", st)
		}
		if ev := events.last(); ev.Kind != update.EventRefused || ev.Data["reason"] != "truncated" {
			t.Fatalf("event: %+v", ev)
		}
		cancel()
		<-done
	})
}
