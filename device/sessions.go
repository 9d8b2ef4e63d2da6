package device

import (
	"context"
	"log/slog"
	"time"

	"github.com/camd-project/camd/device/pairing"
	"github.com/camd-project/camd/media/rtsp"
	"github.com/camd-project/camd/media/whep"
)

// sessionSweep is how often the session guard looks for users whose
// access ended by itself (a guest's expiry); revocations and role changes
// wake it at once.
const sessionSweep = 250 * time.Millisecond

// sessionGuard ends the live and playback sessions of users who may no
// longer watch: revoked, expired, or whose role changed since they made
// the session (docs/security.md, "Sessions per user"). The credential
// check refuses their next request; this stops what they already have.
type sessionGuard struct {
	users    func() []pairing.User      // *pairing.Manager
	sessions func() []whep.SessionStats // from *whep.Server's Stats
	end      func(user, reason string) int
	log      *slog.Logger
	wake     chan struct{}
}

// newSessionGuard guards the sessions of w and of r (nil: RTSP is off).
// A stream key's sessions belong to the user pairing.KeySubject(id).
func newSessionGuard(p *pairing.Manager, w *whep.Server, r *rtsp.Server, log *slog.Logger) *sessionGuard {
	return &sessionGuard{
		users: func() []pairing.User { return append(p.Users(), p.KeyUsers()...) },
		sessions: func() []whep.SessionStats {
			list := w.Stats().Sessions
			if r != nil {
				// RTSP sessions are a key's, never an owner's.
				for _, s := range r.Stats().Sessions {
					list = append(list, whep.SessionStats{ID: s.ID, User: s.User})
				}
			}
			return list
		},
		end: func(user, reason string) int {
			n := w.EndUser(user, reason)
			if r != nil {
				n += r.EndUser(user, reason)
			}
			return n
		},
		log:  log,
		wake: make(chan struct{}, 1),
	}
}

// changed tells the guard that users changed (pairing's OnChange).
func (g *sessionGuard) changed() {
	select {
	case g.wake <- struct{}{}:
	default:
	}
}

// run checks at every change and every sessionSweep until ctx ends.
func (g *sessionGuard) run(ctx context.Context) {
	t := time.NewTicker(sessionSweep)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-g.wake:
		}
		g.check(time.Now())
	}
}

// check ends the sessions of every user who may not watch as they did
// when they made the session.
func (g *sessionGuard) check(now time.Time) {
	may := map[string]pairing.Role{}
	for _, u := range g.users() {
		if u.Expires.IsZero() || now.Before(u.Expires) {
			may[u.ID] = u.Role
		}
	}
	ended := map[string]bool{}
	for _, s := range g.sessions() {
		if ended[s.User] {
			continue
		}
		role, ok := may[s.User]
		reason := ""
		switch {
		case !ok:
			reason = "access ended"
		case (role == pairing.Owner) != s.Owner:
			reason = "role changed"
		default:
			continue
		}
		ended[s.User] = true
		n := g.end(s.User, reason)
		g.log.Info("camd: ended a user's sessions", "user", s.User, "sessions", n, "reason", reason)
	}
}
