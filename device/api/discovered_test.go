package api

import (
	"context"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/camd-project/camd/discovery/lan"
)

// finderFunc is a fake LAN finder.
type finderFunc func(ctx context.Context) (DiscoveredAnswer, error)

func (f finderFunc) FindCameras(ctx context.Context) (DiscoveredAnswer, error) { return f(ctx) }

func TestDiscoveredRoute(t *testing.T) {
	no := false
	var window time.Duration
	d := &Discovered{Finder: finderFunc(func(ctx context.Context) (DiscoveredAnswer, error) {
		dl, _ := ctx.Deadline()
		window = time.Until(dl)
		return DiscoveredAnswer{Interfaces: []string{"eth0"}, Cameras: []lan.Camera{{
			Kind: lan.Camd, Name: "Front Door", ID: "FRONTFRONTFRONT1", Addrs: []netip.Addr{netip.MustParseAddr("10.0.0.21")},
			Port: 8443, Paired: &no, Via: []string{lan.ViaMDNS},
		}}}, nil
	})}
	routes := d.routes()

	var ans DiscoveredAnswer
	answer(t, do(t, routes, request{method: "GET", path: "/api/v1/cameras/discovered", token: "owner-token"}), 200, &ans)
	if len(ans.Cameras) != 1 || ans.Cameras[0].Name != "Front Door" || ans.Cameras[0].Paired == nil || *ans.Cameras[0].Paired ||
		len(ans.Interfaces) != 1 {
		t.Fatalf("answer %+v", ans)
	}
	if window <= 0 || window > DefaultDiscoveryWindow {
		t.Errorf("searched with %v left, want at most the default window %v", window, DefaultDiscoveryWindow)
	}
	answer(t, do(t, routes, request{method: "GET", path: "/api/v1/cameras/discovered?window=700ms", token: "owner-token"}), 200, nil)
	if window > 700*time.Millisecond {
		t.Errorf("?window=700ms searched with %v left", window)
	}

	for _, c := range []struct {
		name, token, query string
		code               int
	}{
		{"no credential", "", "", 401},
		{"unknown or revoked credential", "revoked-token", "", 401},
		{"viewer", "viewer-token", "", 403},
		{"stream key", "key-token", "", 403},
		{"window too short", "owner-token", "?window=100ms", 400},
		{"window too long", "owner-token", "?window=1m", 400},
		{"window not a duration", "owner-token", "?window=soon", 400},
	} {
		w := do(t, routes, request{method: "GET", path: "/api/v1/cameras/discovered" + c.query, token: c.token})
		if w.Code != c.code {
			t.Errorf("%s: %d %s, want %d", c.name, w.Code, w.Body, c.code)
		}
	}

	// No finder (nothing wired): 503.
	w := do(t, (&Discovered{}).routes(), request{method: "GET", path: "/api/v1/cameras/discovered", token: "owner-token"})
	if w.Code != 503 {
		t.Errorf("no finder: %d", w.Code)
	}
}

// One search at a time: a second gets 429; a client that goes away ends
// its search.
func TestDiscoveredOneSearchAtATime(t *testing.T) {
	started := make(chan struct{})
	ended := make(chan error, 1)
	d := &Discovered{Finder: finderFunc(func(ctx context.Context) (DiscoveredAnswer, error) {
		close(started)
		<-ctx.Done()
		ended <- ctx.Err()
		return DiscoveredAnswer{}, nil
	})}
	h := serve(tokens, discard, d.routes(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	req := httptest.NewRequestWithContext(ctx, "GET", "/api/v1/cameras/discovered?window=5s", nil)
	req.Header.Set("Authorization", "Bearer owner-token")
	first := make(chan *httptest.ResponseRecorder)
	go func() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		first <- w
	}()
	<-started
	w := doWith(t, h, request{method: "GET", path: "/api/v1/cameras/discovered", token: "owner-token"})
	if w.Code != 429 || w.Header().Get("Retry-After") == "" || !strings.Contains(errorOf(t, w), "under way") {
		t.Errorf("second search: %d %v %s", w.Code, w.Header(), w.Body)
	}
	cancel()
	if err := <-ended; err != context.Canceled {
		t.Errorf("the search ended with %v, want the client's cancellation", err)
	}
	<-first
	// Free again.
	d.Finder = finderFunc(func(context.Context) (DiscoveredAnswer, error) { return DiscoveredAnswer{}, nil })
	var ans DiscoveredAnswer
	answer(t, doWith(t, h, request{method: "GET", path: "/api/v1/cameras/discovered", token: "owner-token"}), 200, &ans)
	if ans.Cameras == nil || ans.Interfaces == nil {
		t.Errorf("empty answer has null lists: %+v", ans)
	}
}
