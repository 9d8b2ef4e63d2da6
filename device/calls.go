package device

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/camd-project/camd/board"
	"github.com/camd-project/camd/device/calls"
	"github.com/camd-project/camd/device/events"
	"github.com/camd-project/camd/device/pairing"
	"github.com/camd-project/camd/media/talk"
	"github.com/camd-project/camd/media/whep"
	"github.com/camd-project/camd/storage/eventlog"
)

// callState is the doorbell's calls (docs/calls.md): the state machine,
// whose transitions become events, rung by the doorbell and the API.
type callState struct {
	m      *calls.Manager
	events *eventState
	// speaker is the board's (nil: none); volume the setting, 0 to 1.
	speaker func() board.Speaker
	volume  func() float64
	// ringing shows a ringing call on the board (chime, LED, ring-back
	// tone) or stops; it returns once done.
	ringing func(on bool)
	// rec keeps a call's clip and snapshot (nil in tests of the board).
	rec *recordingState
	// media ends an answered call's WebRTC session when the call ends
	// (hung up by its route, max duration, access ended); nil: none.
	media callSessions
	// mic hears what the speaker plays: the half-duplex gate or the
	// echo canceller (nil: nothing does).
	mic *micChain
	log *slog.Logger

	mu   sync.Mutex
	kept map[string]keptCall // by call ID, until the call finishes
}

// callSessions ends a call's media sessions (*whep.Server).
type callSessions interface {
	EndCall(id, reason string) int
}

// keptCall is what was kept of a call's press: the clip (nil while the
// store is paused) and the snapshot's ID, once taken.
type keptCall struct {
	clip     *eventlog.Clip
	snapshot string
}

// openCalls builds the calls of the paired users: every paired user's
// phone rings (stream keys are no phones).
func openCalls(c CallsConfig, es *eventState, p *pairing.Manager, rec *recordingState, media callSessions, speaker func() board.Speaker, volume func() float64, ringing func(on bool), log *slog.Logger) *callState {
	cs := &callState{events: es, rec: rec, media: media, speaker: speaker, volume: volume, ringing: ringing, log: log, kept: map[string]keptCall{}}
	cs.m = calls.New(calls.Options{
		RingTimeout: c.RingTimeout,
		MaxDuration: c.MaxDuration,
		Phones: func() []string {
			var ids []string
			for _, u := range p.Users() {
				ids = append(ids, u.ID)
			}
			return ids
		},
		Notify: cs.transition,
		Logger: log,
	})
	return cs
}

// pressed is the doorbell's press: it rings, unless a call is in
// progress (logged and ignored).
func (cs *callState) pressed() {
	if _, err := cs.m.Ring("doorbell", ""); err != nil && !errors.Is(err, calls.ErrInCall) {
		cs.log.Warn("calls: the doorbell could not ring", "err", err)
	}
}

// transition stores a call's change as its event: a press of the
// doorbell (doorbell.pressed) before the ringing it starts.
func (cs *callState) transition(t calls.Transition) {
	switch {
	case t.To == calls.Ringing:
		cs.ringing(true)
		cs.keep(t.Call.ID, t.Time)
	case t.From == calls.Ringing:
		cs.ringing(false)
	}
	c := t.Call
	data := map[string]string{"call": c.ID, "state": string(t.To)}
	set := func(k, v string) {
		if v != "" {
			data[k] = v
		}
	}
	set("user", t.User)
	set("reason", t.Reason)
	e := eventlog.Event{Time: t.Time, Data: data}
	switch t.To {
	case calls.Ringing:
		set("source", c.Source)
		if c.Source == "doorbell" {
			cs.events.add(eventlog.Event{Kind: events.DoorbellPressed, Time: t.Time, Message: "the doorbell was pressed", Data: map[string]string{"call": c.ID}})
		}
		e.Kind, e.Message = events.CallRinging, "a call is ringing"
	case calls.Answered:
		e.Kind, e.Message = events.CallAnswered, "the call was answered"
	case calls.Declined, calls.Busy:
		e.Kind, e.Message = events.CallDeclined, "the call was declined ("+t.Reason+")"
	case calls.Missed:
		e.Kind, e.Message = events.CallMissed, "missed call"
		if cs.rec != nil {
			// After the snapshot's task, on the same goroutine: the
			// event points to it.
			cs.rec.later(func() {
				k := cs.forget(c.ID)
				e.Snapshot, e.Clip = k.snapshot, k.clip
				cs.events.add(e)
			})
			return
		}
	case calls.Ended:
		if cs.media != nil {
			// The session's own end (the phone left, the connection
			// failed) comes back here too: it is ended already.
			cs.media.EndCall(c.ID, t.Reason)
		}
		e.Kind = events.CallEnded
		secs := 0
		if !c.Answered.IsZero() {
			secs = int(c.Finished.Sub(c.Answered).Round(time.Second) / time.Second)
		}
		data["seconds"] = strconv.Itoa(secs)
		e.Message = fmt.Sprintf("the call ended after %d s (%s)", secs, t.Reason)
	}
	if t.From == calls.Ringing && t.To != calls.Missed && cs.rec != nil {
		cs.rec.later(func() { cs.forget(c.ID) })
	}
	cs.events.add(e)
}

// keep keeps the clip and a snapshot of a call that began at at.
func (cs *callState) keep(id string, at time.Time) {
	if cs.rec == nil {
		return
	}
	cs.mu.Lock()
	cs.kept[id] = keptCall{}
	cs.mu.Unlock()
	clip := cs.rec.keepCall(at, func(snapshot string) {
		cs.mu.Lock()
		defer cs.mu.Unlock()
		if k, ok := cs.kept[id]; ok {
			k.snapshot = snapshot
			cs.kept[id] = k
		}
	})
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if k, ok := cs.kept[id]; ok {
		k.clip = clip
		cs.kept[id] = k
	}
}

// forget returns what was kept of a call and forgets it.
func (cs *callState) forget(id string) keptCall {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	k := cs.kept[id]
	delete(cs.kept, id)
	return k
}

// NewCall is the answered call's media hooks: the phone's audio plays on
// the speaker (talk.Player) until the session ends; then ended.
func (cs *callState) NewCall(id string, ended func(reason string)) whep.Call {
	sp := cs.speaker()
	if sp == nil {
		return whep.Call{ID: id, Ended: ended}
	}
	var out player = sp
	if cs.mic != nil {
		out = cs.mic.speaker(sp)
	}
	p := talk.New(out, talk.Options{Volume: cs.volume, Logger: cs.log})
	return whep.Call{
		ID:   id,
		Talk: func(c webrtc.RTPCodecParameters, pkt *rtp.Packet) { p.Packet(c.MimeType, pkt) },
		Ended: func(reason string) {
			p.Flush()
			st := p.Stats()
			cs.log.Info("calls: phone audio", "call", id, "played", st.Played, "concealed", st.Concealed, "late", st.Late, "refused", st.Refused, "jitter", st.Jitter, "depth", st.Depth)
			ended(reason)
		},
	}
}

// held is the answered call's user, for the session guard: a revoked
// user's call ends. The role is theirs now: a role change does not end a
// call.
func (cs *callState) held(p *pairing.Manager) func() []heldSession {
	return func() []heldSession {
		c, ok := cs.m.Current()
		if !ok || c.State != calls.Answered {
			return nil
		}
		owner := false
		for _, u := range p.Users() {
			if u.ID == c.AnsweredBy {
				owner = u.Role == pairing.Owner
			}
		}
		return []heldSession{{User: c.AnsweredBy, Owner: owner}}
	}
}
