package device

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/camd-project/camd/device/api"
	"github.com/camd-project/camd/device/pairing"
	"github.com/camd-project/camd/media/whep"
)

// The guard ends the sessions of a user revoked (at once, on the change),
// expired (within a sweep) or whose role changed, and nobody else's.
func TestSessionGuardEndsWhoMayNoLongerWatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		users := []pairing.User{
			{ID: "owner", Role: pairing.Owner},
			{ID: "guest", Role: pairing.Viewer, Expires: start.Add(time.Minute)},
			{ID: "tablet", Role: pairing.Viewer},
			{ID: "promoted", Role: pairing.Viewer},
		}
		sessions := []whep.SessionStats{
			{ID: "s1", User: "owner", Owner: true}, {ID: "s2", User: "guest"},
			{ID: "s3", User: "tablet"}, {ID: "s4", User: "tablet", Playback: true},
			{ID: "s5", User: "promoted"},
		}
		ended := map[string]string{}
		var mu sync.Mutex // the guard's goroutine and the test's share the fakes
		g := &sessionGuard{
			users: func() []pairing.User {
				mu.Lock()
				defer mu.Unlock()
				return slices.Clone(users)
			},
			holders: []sessionHolder{{
				what: "sessions",
				held: func() []heldSession {
					mu.Lock()
					defer mu.Unlock()
					var out []heldSession
					for _, s := range sessions {
						out = append(out, heldSession{User: s.User, Owner: s.Owner})
					}
					return out
				},
				end: func(user, reason string) int {
					mu.Lock()
					defer mu.Unlock()
					ended[user] = reason
					n := len(sessions)
					sessions = slicesDeleteUser(sessions, user)
					return n - len(sessions)
				},
			}},
			log:  slog.New(slog.DiscardHandler),
			wake: make(chan struct{}, 1),
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go g.run(ctx)

		// check reads the fakes' state under their lock.
		check := func(f func()) {
			mu.Lock()
			defer mu.Unlock()
			f()
		}
		time.Sleep(10 * time.Second)
		synctest.Wait()
		check(func() {
			if len(ended) != 0 {
				t.Fatalf("ended %v with nobody's access changed", ended)
			}
			// Revoked: gone from the users; promoted: a new role.
			users = []pairing.User{users[0], users[1], users[3]}
			users[2].Role = pairing.Owner
		})
		g.changed() // the change wakes the guard at once
		synctest.Wait()
		check(func() {
			if ended["tablet"] != "access ended" || ended["promoted"] != "role changed" {
				t.Fatalf("after the revocation and the role change: %v", ended)
			}
			if _, ok := ended["guest"]; ok {
				t.Fatal("the guest's sessions ended before its access did")
			}
		})
		// Expired: within a sweep of the expiry, with no change to wake it.
		time.Sleep(time.Until(start.Add(time.Minute)) - time.Millisecond)
		synctest.Wait()
		check(func() {
			if _, ok := ended["guest"]; ok {
				t.Fatal("the guest's sessions ended before its access did")
			}
		})
		time.Sleep(sessionSweep)
		synctest.Wait()
		check(func() {
			if ended["guest"] != "access ended" {
				t.Fatalf("a sweep after the guest's access ended: %v", ended)
			}
			if _, ok := ended["owner"]; ok || len(sessions) != 1 || sessions[0].User != "owner" {
				t.Fatalf("ended %v, left %v: the owner's session must go on", ended, sessions)
			}
		})
	})
}

func slicesDeleteUser(ss []whep.SessionStats, user string) []whep.SessionStats {
	var out []whep.SessionStats
	for _, s := range ss {
		if s.User != user {
			out = append(out, s)
		}
	}
	return out
}

// A viewer watching when the owner revokes it stops receiving frames: its
// session ends on the camera and its connection closes. The owner sees
// every session and whose it is, and can end one.
func TestRevokedViewerStopsWatching(t *testing.T) {
	d, _ := runningAt(t, testConfig(t)) // the synthetic camera: frames to stop
	ownerToken := owner(t, d)
	viewerToken := viewer(t, d, ownerToken)
	endpoint := "https://" + d.Addr().String() + "/api/v1/whep"

	watch := func(token string) (<-chan whep.ViewStats, context.CancelFunc) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan whep.ViewStats, 1)
		go func() {
			st, _ := whep.View(ctx, endpoint, whep.ViewOptions{HTTPClient: testClient(),
				Header: http.Header{"Authorization": {"Bearer " + token}}})
			done <- st
		}()
		return done, cancel
	}
	viewerDone, stopViewer := watch(viewerToken)
	defer stopViewer()
	ownerDone, stopOwner := watch(ownerToken)
	defer stopOwner()

	// Both watch: two sessions with frames, listed for the owner.
	var list []api.Session
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		code, b := call(t, d, "GET", "/api/v1/sessions", ownerToken, nil)
		list = nil
		json.Unmarshal(b, &list)
		frames := 0
		for _, s := range list {
			if s.Frames > 0 {
				frames++
			}
		}
		if code == http.StatusOK && frames == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sessions: %d %s; stats %+v", code, b, d.whep.Stats())
		}
	}
	var vid string
	for _, s := range list {
		if !s.Owner {
			vid = s.User
		}
	}
	if code, _ := call(t, d, "GET", "/api/v1/sessions", viewerToken, nil); code != http.StatusForbidden {
		t.Fatalf("a viewer lists the sessions: %d", code)
	}

	revoked := time.Now()
	if code, _ := call(t, d, "DELETE", "/api/v1/users/"+vid, ownerToken, nil); code != http.StatusNoContent {
		t.Fatalf("revoke: %d", code)
	}
	select {
	case st := <-viewerDone:
		t.Logf("the revoked viewer's connection ended %v after the revocation (%d frames)", time.Since(revoked), st.FramesReceived)
	case <-time.After(10 * time.Second):
		t.Fatal("the revoked viewer still watches 10 s after the revocation")
	}
	if n := sessionsOf(d, vid); n != 0 {
		t.Fatalf("%d sessions of the revoked viewer left", n)
	}
	select {
	case <-ownerDone:
		t.Fatal("the owner's viewing ended with the viewer's revocation")
	default:
	}

	// The owner ends a session by its ID; an unknown ID is 404.
	code, b := call(t, d, "GET", "/api/v1/sessions", ownerToken, nil)
	list = nil
	if json.Unmarshal(b, &list); code != http.StatusOK || len(list) != 1 {
		t.Fatalf("sessions after the revocation: %d %s", code, b)
	}
	if code, _ := call(t, d, "DELETE", "/api/v1/sessions/"+list[0].ID, ownerToken, nil); code != http.StatusNoContent {
		t.Fatalf("end a session: %d", code)
	}
	if code, _ := call(t, d, "DELETE", "/api/v1/sessions/"+list[0].ID, ownerToken, nil); code != http.StatusNotFound {
		t.Fatalf("end it again: %d", code)
	}
	select {
	case <-ownerDone:
	case <-time.After(10 * time.Second):
		t.Fatal("the owner's session still runs after it was ended")
	}
}

func sessionsOf(d *Daemon, user string) int {
	n := 0
	for _, s := range d.whep.Stats().Sessions {
		if s.User == user {
			n++
		}
	}
	return n
}
