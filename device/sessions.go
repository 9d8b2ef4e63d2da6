package device

import (
	"context"
	"log/slog"
	"time"

	"github.com/camd-project/camd/device/events"
	"github.com/camd-project/camd/device/pairing"
	"github.com/camd-project/camd/media/rtsp"
	"github.com/camd-project/camd/media/whep"
)

// sessionSweep is how often the session guard looks for users whose
// access ended by itself (a guest's expiry); revocations and role changes
// wake it at once.
const sessionSweep = 250 * time.Millisecond

// sessionGuard ends the live and playback sessions and the event
// streams of users who may no longer have them: revoked, expired, or
// whose role changed since they started them (docs/security.md,
// "Sessions per user"). The credential check refuses their next request;
// this stops what they already have.
type sessionGuard struct {
	users   func() []pairing.User // *pairing.Manager
	holders []sessionHolder
	log     *slog.Logger
	wake    chan struct{}
}

// sessionHolder is what keeps users' sessions: the WHEP server (live view
// and playbacks), the event bus (event streams), the calls (the answered
// one).
type sessionHolder struct {
	what string // for the log
	held func() []heldSession
	end  func(user, reason string) int
}

// heldSession is whose a session is, and whether they were an owner when
// they started it.
type heldSession struct {
	User  string
	Owner bool
}

// A stream key's sessions (WHEP and RTSP; r is nil when RTSP is off)
// belong to the user pairing.KeySubject(id). more are other holders (the
// answered call).
func newSessionGuard(p *pairing.Manager, w *whep.Server, r *rtsp.Server, bus *events.Bus, log *slog.Logger, more ...sessionHolder) *sessionGuard {
	g := &sessionGuard{
		users: func() []pairing.User { return append(p.Users(), p.KeyUsers()...) },
		holders: []sessionHolder{
			{what: "sessions", end: w.EndUser, held: func() []heldSession {
				var out []heldSession
				for _, s := range w.Stats().Sessions {
					out = append(out, heldSession{User: s.User, Owner: s.Owner})
				}
				return out
			}},
			{what: "event streams", end: bus.EndUser, held: func() []heldSession {
				var out []heldSession
				for _, s := range bus.Subscriptions() {
					out = append(out, heldSession{User: s.User, Owner: s.Owner})
				}
				return out
			}},
		},
		log:  log,
		wake: make(chan struct{}, 1),
	}
	g.holders = append(g.holders, more...)
	if r != nil {
		// RTSP sessions are a key's, never an owner's.
		g.holders = append(g.holders, sessionHolder{what: "RTSP sessions", end: r.EndUser, held: func() []heldSession {
			var out []heldSession
			for _, s := range r.Stats().Sessions {
				out = append(out, heldSession{User: s.User})
			}
			return out
		}})
	}
	return g
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

// check ends the sessions of every user who may not have them as they
// did when they started them.
func (g *sessionGuard) check(now time.Time) {
	may := map[string]pairing.Role{}
	for _, u := range g.users() {
		if u.Expires.IsZero() || now.Before(u.Expires) {
			may[u.ID] = u.Role
		}
	}
	for _, h := range g.holders {
		ended := map[string]bool{}
		for _, s := range h.held() {
			// A subscription without a user is the device's own (MQTT,
			// Web Push, webhooks), not a user's stream.
			if ended[s.User] || s.User == "" {
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
			n := h.end(s.User, reason)
			g.log.Info("camd: ended a user's "+h.what, "user", s.User, h.what, n, "reason", reason)
		}
	}
}
