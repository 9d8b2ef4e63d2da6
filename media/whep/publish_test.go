package whep

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/camd-project/camd/internal/testenv"
	"github.com/camd-project/camd/media"
	"github.com/camd-project/camd/media/whep/whiptest"
)

const testToken = "s3cret-publish-token"

// newEndpoint starts a WHIP endpoint until the test ends.
func newEndpoint(t *testing.T) *whiptest.Endpoint {
	e := whiptest.New(testToken)
	e.Links = []string{`<stun:stun.invalid:3478>; rel="ice-server"`}
	t.Cleanup(e.Close)
	return e
}

// runPublisher runs a publisher of a fake encoder's hub until the test
// ends; it returns the publisher, its log and the states it went
// through.
func runPublisher(t *testing.T, opts PublishOptions) (*Publisher, *testenv.Buffer, func() []PublishState) {
	t.Helper()
	h := media.NewHub(media.HubOptions{})
	logs := &testenv.Buffer{}
	opts.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug - 4}))
	opts.IncludeLoopback = true
	opts.Certificate = testCertificate(t)
	var mu sync.Mutex
	var states []PublishState
	opts.OnChange = func(st PublishStatus) {
		mu.Lock()
		defer mu.Unlock()
		if len(states) == 0 || states[len(states)-1] != st.State {
			states = append(states, st.State)
		}
	}
	p, err := NewPublisher(h, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { publishLoop(ctx, h) })
	wg.Go(func() {
		if err := p.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		h.Close()
		if strings.Contains(logs.String(), testToken) {
			t.Errorf("the token is in the log:\n%s", logs.String())
		}
	})
	return p, logs, func() []PublishState {
		mu.Lock()
		defer mu.Unlock()
		return append([]PublishState(nil), states...)
	}
}

func TestPublishSendsTheStreamAndDeletesOnStop(t *testing.T) {
	e := newEndpoint(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h := media.NewHub(media.HubOptions{})
	var wg sync.WaitGroup
	wg.Go(func() { publishLoop(ctx, h) })
	p, err := NewPublisher(h, PublishOptions{URL: e.URL, Token: testToken, IncludeLoopback: true, Certificate: testCertificate(t)})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx) }()
	waitFor(t, "60 frames and audio at the endpoint", func() bool { n, _ := e.Frames(1); return n >= 60 && e.Audio(1) > 0 })
	if _, key := e.Frames(1); !key {
		t.Error("the first frame the endpoint got is not a keyframe")
	}
	st := p.Status()
	if st.State != Publishing || st.Frames < 60 || st.Endpoint != strings.TrimSuffix(e.URL, "/whip") {
		t.Errorf("status %+v", st)
	}
	p.mu.Lock()
	servers := p.servers
	p.mu.Unlock()
	if len(servers) != 1 || servers[0].URLs[0] != "stun:stun.invalid:3478" {
		t.Errorf("ICE servers from OPTIONS: %+v", servers)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	deleted, methods := e.Deleted(), strings.Join(e.Methods(), " ")
	if len(deleted) != 1 || deleted[0] != 1 {
		t.Errorf("deleted %v, want the one session", deleted)
	}
	if methods != "OPTIONS POST DELETE" {
		t.Errorf("requests %q", methods)
	}
	if st := p.Status(); st.State != PublishStopped {
		t.Errorf("after Run: %s", st.State)
	}
	if n := len(h.Stats().Consumers); n != 0 {
		t.Errorf("%d consumers left on the hub", n)
	}
	cancel()
	wg.Wait()
	h.Close()
}

func TestPublishReconnectsAfterTheEndpointDrops(t *testing.T) {
	e := newEndpoint(t)
	p, _, states := runPublisher(t, PublishOptions{URL: e.URL, Token: testToken, MinBackoff: 50 * time.Millisecond})
	waitFor(t, "frames of the first session", func() bool { n, _ := e.Frames(1); return n >= 10 })
	e.Drop()
	waitFor(t, "frames of a second session", func() bool { n, _ := e.Frames(2); return n >= 10 })
	if _, key := e.Frames(2); !key {
		t.Error("the second session did not start with a keyframe")
	}
	got := states()
	want := []PublishState{PublishConnecting, Publishing, PublishRetrying, PublishConnecting, Publishing}
	if strings.Join(stateNames(got), " ") != strings.Join(stateNames(want), " ") {
		t.Errorf("states %v, want %v", got, want)
	}
	if st := p.Status(); st.Error == "" || st.Failures != 0 {
		t.Errorf("after recovering: %+v", st)
	}
}

// TestPublishOffersAudioOnlyWithSound: a source without sound (a
// passthrough stream) is published without an audio track, which an SFU
// would wait for before it serves the stream.
func TestPublishOffersAudioOnlyWithSound(t *testing.T) {
	e := newEndpoint(t)
	h := media.NewHub(media.HubOptions{})
	defer h.Close()
	h.Begin(media.SourceInfo{Name: "passthrough"}) // no audio, no forced keyframes
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ctx.Err() == nil; i++ {
			<-tick.C
			h.Publish(&media.Frame{Kind: media.Video, Key: i%30 == 0, PTS: time.Duration(i) * 10 * time.Millisecond, Data: fakeAU(i%30 == 0, i)})
		}
	})
	spy := &offerSpy{}
	p, err := NewPublisher(h, PublishOptions{URL: e.URL, Token: testToken, IncludeLoopback: true,
		HTTPClient: &http.Client{Transport: spy}})
	if err != nil {
		t.Fatal(err)
	}
	wg.Go(func() { p.Run(ctx) })
	waitFor(t, "frames at the endpoint", func() bool { n, _ := e.Frames(1); return n >= 10 })
	if offer := spy.last(); strings.Contains(offer, "m=audio") || !strings.Contains(offer, "m=video") {
		t.Errorf("offer:\n%s", offer)
	}
	if n, key := e.Frames(1); !key || e.Audio(1) != 0 {
		t.Errorf("%d frames, first a keyframe: %v, %d audio packets", n, key, e.Audio(1))
	}
}

// offerSpy keeps the SDP offer of the POST it passes on.
type offerSpy struct {
	mu    sync.Mutex
	offer string
}

func (s *offerSpy) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPost {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.offer = string(b)
		s.mu.Unlock()
		r.Body = io.NopCloser(strings.NewReader(string(b)))
	}
	return http.DefaultTransport.RoundTrip(r)
}

func (s *offerSpy) last() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.offer
}

func stateNames(s []PublishState) []string {
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = string(x)
	}
	return out
}

// fakeTransport answers every request itself.
type fakeTransport struct {
	n      atomic.Int32
	answer func(*http.Request) (*http.Response, error)
}

func (f *fakeTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	f.n.Add(1)
	return f.answer(r)
}

// bubblePublisher runs a publisher whose requests tr answers, inside a
// synctest bubble, for d of fake time; it returns the times of the
// requests and the last status.
func bubblePublisher(t *testing.T, tr *fakeTransport, opts PublishOptions, d time.Duration) ([]time.Duration, PublishStatus) {
	var at []time.Duration
	start := time.Now()
	answer := tr.answer
	tr.answer = func(r *http.Request) (*http.Response, error) {
		at = append(at, time.Since(start))
		return answer(r)
	}
	h := media.NewHub(media.HubOptions{})
	defer h.Close()
	opts.URL = "https://sfu.example/whip"
	opts.Token = testToken
	opts.HTTPClient = &http.Client{Transport: tr}
	p, err := NewPublisher(h, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.Run(ctx) }()
	time.Sleep(d)
	synctest.Wait()
	st := p.Status()
	cancel()
	<-done
	return at, st
}

func TestPublishRefusedTokenStopsTrying(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := &fakeTransport{answer: func(r *http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: http.StatusUnauthorized, Status: "401 Unauthorized", Body: http.NoBody, Header: http.Header{}, Request: r}, nil
		}}
		at, st := bubblePublisher(t, tr, PublishOptions{}, time.Hour)
		if len(at) != 1 {
			t.Errorf("%d requests in an hour after a 401, want 1", len(at))
		}
		if st.State != PublishRefused || !strings.Contains(st.Error, "refused the token") || strings.Contains(st.Error, testToken) {
			t.Errorf("status %+v", st)
		}
	})
}

func TestPublishUnreachableBacksOffToTheCap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := &fakeTransport{answer: func(*http.Request) (*http.Response, error) {
			return nil, errors.New("dial tcp: connection refused")
		}}
		at, st := bubblePublisher(t, tr, PublishOptions{MinBackoff: time.Second, MaxBackoff: 30 * time.Second}, 10*time.Minute)
		if st.State != PublishRetrying || !strings.Contains(st.Error, "connection refused") || !strings.Contains(st.Error, "https://sfu.example") ||
			strings.Contains(st.Error, "/whip") {
			t.Errorf("status %+v", st)
		}
		// Pauses of 1, 2, 4, 8, 16 s, then 30 s, each ±20 %.
		for i := 1; i < len(at); i++ {
			want := min(time.Second<<(i-1), 30*time.Second)
			if gap := at[i] - at[i-1]; gap < want*8/10 || gap > want*12/10 {
				t.Errorf("pause %d: %s, want %s ±20 %%", i, gap, want)
			}
		}
		// 31 s for the first five, then one each 30 s: about 20 in 10 min.
		if len(at) < 17 || len(at) > 25 {
			t.Errorf("%d attempts in 10 min", len(at))
		}
	})
}

func TestPublishRetryAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := &fakeTransport{answer: func(r *http.Request) (*http.Response, error) {
			if r.Method == http.MethodOptions {
				return &http.Response{StatusCode: http.StatusNoContent, Body: http.NoBody, Header: http.Header{}, Request: r}, nil
			}
			return &http.Response{StatusCode: http.StatusServiceUnavailable, Status: "503 Service Unavailable",
				Body: io.NopCloser(strings.NewReader("busy, and your " + r.Header.Get("Authorization"))), Header: http.Header{"Retry-After": {"20"}}, Request: r}, nil
		}}
		at, st := bubblePublisher(t, tr, PublishOptions{}, 61*time.Second)
		// OPTIONS and POST at 0, 20 s, 40 s and 60 s.
		if len(at) != 8 {
			t.Fatalf("requests at %v", at)
		}
		if gap := at[2] - at[1]; gap != 20*time.Second {
			t.Errorf("next attempt after %s, want the 20 s of Retry-After", gap)
		}
		if !strings.Contains(st.Error, "503") || !strings.Contains(st.Error, "busy") || strings.Contains(st.Error, testToken) {
			t.Errorf("status %+v", st)
		}
	})
}

// TestPublishPinnedCertificate: an SFU with a self-signed certificate is
// published to when its certificate is pinned, and not when another is.
func TestPublishPinnedCertificate(t *testing.T) {
	e := whiptest.NewTLS(testToken)
	t.Cleanup(e.Close)
	right := sha256.Sum256(e.Certificate())
	p, _, _ := runPublisher(t, PublishOptions{URL: e.URL, Token: testToken, PinSHA256: right[:]})
	waitFor(t, "frames over HTTPS", func() bool { n, _ := e.Frames(1); return n >= 10 })
	if st := p.Status(); st.State != Publishing {
		t.Errorf("pinned: %+v", st)
	}

	other := sha256.Sum256([]byte("another certificate"))
	p, _, _ = runPublisher(t, PublishOptions{URL: e.URL, Token: testToken, PinSHA256: other[:]})
	waitFor(t, "the other pin refused", func() bool { return p.Status().State == PublishRetrying })
	if st := p.Status(); !strings.Contains(st.Error, "not the pinned one") {
		t.Errorf("another pin: %+v", st)
	}
	// Without a pin, the self-signed certificate is refused.
	p, _, _ = runPublisher(t, PublishOptions{URL: e.URL, Token: testToken})
	waitFor(t, "the unknown certificate refused", func() bool { return p.Status().State == PublishRetrying })
	if st := p.Status(); !strings.Contains(st.Error, "certificate") {
		t.Errorf("no pin: %+v", st)
	}
	for _, bad := range []PublishOptions{{URL: e.URL, PinSHA256: right[:8]}, {URL: "http://sfu/whip", PinSHA256: right[:]}} {
		if _, err := NewPublisher(media.NewHub(media.HubOptions{}), bad); !errors.Is(err, ErrPin) {
			t.Errorf("%s, %d-byte pin: %v", bad.URL, len(bad.PinSHA256), err)
		}
	}
}

func TestNewPublisherRefusesBadURLs(t *testing.T) {
	h := media.NewHub(media.HubOptions{})
	defer h.Close()
	for _, u := range []string{"", "ftp://sfu/whip", "sfu.example/whip", "https://user:pw@sfu/whip", "https:///whip"} {
		if _, err := NewPublisher(h, PublishOptions{URL: u}); !errors.Is(err, ErrPublishURL) {
			t.Errorf("%q: %v", u, err)
		}
	}
}

func TestBackoff(t *testing.T) {
	for n, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 6: 32 * time.Second, 7: time.Minute, 100: time.Minute} {
		for range 50 {
			if d := backoff(time.Second, time.Minute, n); d < want*8/10 || d > want*12/10 {
				t.Fatalf("after %d failures: %s, want %s ±20 %%", n, d, want)
			}
		}
	}
}
