package whep

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

// headerUser plays device's authorization: the user is named by the
// X-User header, an owner by X-Owner: 1.
func headerUser(r *http.Request) (string, bool) {
	return r.Header.Get("X-User"), r.Header.Get("X-Owner") == "1"
}

func asUser(id string, owner bool) http.Header {
	h := http.Header{"X-User": {id}}
	if owner {
		h.Set("X-Owner", "1")
	}
	return h
}

var (
	alice = asUser("alice", false)
	bob   = asUser("bob", false)
	olga  = asUser("olga", true) // an owner
)

// postAs offers, as hdr's user, a viewer that never does ICE.
func (ts *testServer) postAs(t *testing.T, hdr http.Header) (*http.Response, string) {
	t.Helper()
	return doAs(t, hdr, http.MethodPost, ts.url, ContentTypeSDP, offer(t, []webrtc.RTPCodecParameters{h264CB}, nil))
}

func TestSessionsBelongToTheirUser(t *testing.T) {
	ts := newTestServer(t, Options{User: headerUser})
	resp, body := ts.postAs(t, alice)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("alice's POST: %s %s", resp.Status, body)
	}
	loc := ts.http.URL + resp.Header.Get("Location")
	_, unknown := doAs(t, bob, http.MethodDelete, ts.url+"/nope", "", "")

	// Another user, an owner too, finds no session there: the answer is
	// the one for a session that does not exist.
	for _, c := range []struct {
		name, method, ct, body string
		who                    http.Header
	}{
		{"bob's PATCH", http.MethodPatch, ContentTypeFrag, "a=end-of-candidates\r\n", bob},
		{"bob's DELETE", http.MethodDelete, "", "", bob},
		{"the owner's DELETE", http.MethodDelete, "", "", olga},
		{"an anonymous DELETE", http.MethodDelete, "", "", nil},
	} {
		resp, body := doAs(t, c.who, c.method, loc, c.ct, c.body)
		if resp.StatusCode != http.StatusNotFound || body != unknown {
			t.Errorf("%s: %s %q, want 404 %q", c.name, resp.Status, body, unknown)
		}
	}
	st := ts.srv.Stats()
	if len(st.Sessions) != 1 || st.Sessions[0].User != "alice" || st.Sessions[0].Playback {
		t.Fatalf("after the others' requests: %+v", st.Sessions)
	}

	if resp, body := doAs(t, alice, http.MethodPatch, loc, ContentTypeFrag, "a=end-of-candidates\r\n"); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("alice's PATCH: %s %s", resp.Status, body)
	}
	if resp, _ := doAs(t, alice, http.MethodDelete, loc, "", ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("alice's DELETE: %s", resp.Status)
	}
}

func TestEndSessionEndsAnyonesSession(t *testing.T) {
	ts := newTestServer(t, Options{User: headerUser})
	resp, _ := ts.postAs(t, alice)
	loc := resp.Header.Get("Location")
	id := loc[strings.LastIndexByte(loc, '/')+1:]
	if err := ts.srv.EndSession(id); err != nil {
		t.Fatal(err)
	}
	if n := ts.viewers(); n != 0 {
		t.Fatalf("%d sessions after EndSession", n)
	}
	if err := ts.srv.EndSession(id); !errors.Is(err, ErrNoSession) {
		t.Fatalf("EndSession of an ended session: %v", err)
	}
}

// frameCounter is a viewer's video output that counts its writes.
type frameCounter struct{ n atomic.Int64 }

func (c *frameCounter) Write(p []byte) (int, error) {
	c.n.Add(1)
	return len(p), nil
}

type viewResult struct {
	st  ViewStats
	err error
	at  time.Time
}

// viewAs watches endpoint as hdr's user until ctx ends or the connection
// does.
func viewAs(ctx context.Context, endpoint string, hdr http.Header, video *frameCounter) <-chan viewResult {
	done := make(chan viewResult, 1)
	go func() {
		st, err := View(ctx, endpoint, ViewOptions{Header: hdr, Video: video, Logger: testLogger()})
		done <- viewResult{st, err, time.Now()}
	}()
	return done
}

// TestEndUserStopsTheirViewers: a revoked user's live and playback viewers
// stop within a second and see their connection end; another user's
// viewer carries on.
func TestEndUserStopsTheirViewers(t *testing.T) {
	ts := newTestServer(t, Options{User: headerUser})
	ctx, cancel := context.WithDeadline(context.Background(), deadline(t))
	defer cancel()
	var aliceLive, alicePlayback, bobLive frameCounter
	aliceLiveDone := viewAs(ctx, ts.url, alice, &aliceLive)
	alicePlaybackDone := viewAs(ctx, ts.http.URL+"/feed", alice, &alicePlayback)
	bobDone := viewAs(ctx, ts.url, bob, &bobLive)
	waitFor(t, "every viewer to receive frames", func() bool {
		return aliceLive.n.Load() > 10 && alicePlayback.n.Load() > 10 && bobLive.n.Load() > 10
	})

	start := time.Now()
	n := ts.srv.EndUser("alice", "user revoked")
	ended := time.Now()
	if n != 2 {
		t.Fatalf("EndUser ended %d sessions, want alice's 2", n)
	}
	if d := ended.Sub(start); d > time.Second {
		t.Errorf("EndUser took %v", d)
	}
	for name, done := range map[string]<-chan viewResult{"live": aliceLiveDone, "playback": alicePlaybackDone} {
		select {
		case r := <-done:
			// The viewer saw the connection close (DTLS close_notify),
			// not its own deadline.
			if ctx.Err() != nil || r.err != nil {
				t.Errorf("alice's %s viewer: %v, context %v", name, r.err, ctx.Err())
			}
			t.Logf("alice's %s viewer ended %v after EndUser returned", name, r.at.Sub(ended))
		case <-time.After(time.Second):
			t.Errorf("alice's %s viewer still connected a second after EndUser", name)
		}
	}
	if ts.feedsStopped.Load() != 1 {
		t.Errorf("the playback's Feed.Stopped ran %d times", ts.feedsStopped.Load())
	}
	st := ts.srv.Stats()
	if len(st.Sessions) != 1 || st.Sessions[0].User != "bob" {
		t.Fatalf("sessions after alice's end: %+v", st.Sessions)
	}

	// bob's viewer goes on: 50 more frames (half a second of the stream).
	// alice's got nothing more in that time.
	stopped := aliceLive.n.Load() + alicePlayback.n.Load()
	bobFrom := bobLive.n.Load()
	waitFor(t, "bob's viewer to carry on", func() bool { return bobLive.n.Load() > bobFrom+50 })
	if now := aliceLive.n.Load() + alicePlayback.n.Load(); now != stopped {
		t.Errorf("alice's viewers received %d frames after their end", now-stopped)
	}
	cancel()
	if r := <-bobDone; r.err != nil {
		t.Errorf("bob's viewer: %v", r.err)
	}
}

// TestPerUserViewerLimit: a user at their limit gets 503 while another
// user gets in; offers that never connect count against their user until
// the ICE timeout frees them.
func TestPerUserViewerLimit(t *testing.T) {
	ts := newTestServer(t, Options{User: headerUser, MaxViewers: 10, MaxViewersPerUser: 2, ICETimeout: time.Second})
	for i := range 2 {
		if resp, body := ts.postAs(t, alice); resp.StatusCode != http.StatusCreated {
			t.Fatalf("alice's offer %d: %s %s", i+1, resp.Status, body)
		}
	}
	resp, body := ts.postAs(t, alice)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, "per-user viewer limit") {
		t.Fatalf("alice's third offer: %s %q, Retry-After %q", resp.Status, body, resp.Header.Get("Retry-After"))
	}
	if resp, body := ts.postAs(t, bob); resp.StatusCode != http.StatusCreated {
		t.Fatalf("bob beside alice at her limit: %s %s", resp.Status, body)
	}
	// None of the offers does ICE: at the timeout alice's slots are hers
	// again.
	waitFor(t, "the unconnected offers to time out", func() bool { return ts.viewers() == 0 })
	if resp, body := ts.postAs(t, alice); resp.StatusCode != http.StatusCreated {
		t.Fatalf("alice after the timeout: %s %s", resp.Status, body)
	}
	if st := ts.srv.Stats(); st.Refused != 1 {
		t.Errorf("refused %d offers, want 1", st.Refused)
	}
}

// TestLastSlotKeptForOwner: viewers who are not owners leave the last slot
// free; an owner takes it.
func TestLastSlotKeptForOwner(t *testing.T) {
	ts := newTestServer(t, Options{User: headerUser, MaxViewers: 3})
	for _, who := range []http.Header{alice, bob} {
		if resp, body := ts.postAs(t, who); resp.StatusCode != http.StatusCreated {
			t.Fatalf("%s: %s %s", who.Get("X-User"), resp.Status, body)
		}
	}
	resp, body := ts.postAs(t, asUser("carol", false))
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, "kept for an owner") {
		t.Fatalf("a viewer when only the owner's slot is left: %s %q, Retry-After %q", resp.Status, body, resp.Header.Get("Retry-After"))
	}
	if resp, body := ts.postAs(t, olga); resp.StatusCode != http.StatusCreated {
		t.Fatalf("the owner in the kept slot: %s %s", resp.Status, body)
	}
	if resp, body := ts.postAs(t, olga); resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "viewer limit reached (3)") {
		t.Fatalf("the owner beyond the limit: %s %q", resp.Status, body)
	}
}

// TestHeldSlotsCount: a slot held outside the server (the WHIP publish)
// counts against MaxViewers, the owner's kept slot included.
func TestHeldSlotsCount(t *testing.T) {
	ts := newTestServer(t, Options{User: headerUser, MaxViewers: 3})
	ts.srv.SetHeld(1)
	if resp, body := ts.postAs(t, alice); resp.StatusCode != http.StatusCreated {
		t.Fatalf("alice: %s %s", resp.Status, body)
	}
	if resp, body := ts.postAs(t, bob); resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "kept for an owner") {
		t.Fatalf("bob with the publish holding a slot: %s %q", resp.Status, body)
	}
	if resp, body := ts.postAs(t, olga); resp.StatusCode != http.StatusCreated {
		t.Fatalf("the owner in the kept slot: %s %s", resp.Status, body)
	}
	ts.srv.SetHeld(0)
	if resp, body := ts.postAs(t, bob); resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "kept for an owner") {
		t.Fatalf("bob: %s %q", resp.Status, body)
	}
	if resp, body := ts.postAs(t, asUser("olga", true)); resp.StatusCode != http.StatusCreated {
		t.Fatalf("the owner once the publish let go: %s %s", resp.Status, body)
	}
}
