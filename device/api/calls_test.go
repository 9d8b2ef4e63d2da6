package api

import (
	"testing"
	"time"

	"github.com/camd-project/camd/device/calls"
	"github.com/camd-project/camd/storage/eventlog"
)

// fakeCalls is the manager as the list reads it: no call in progress,
// and the finished calls it keeps.
type fakeCalls map[string]calls.Call

func (f fakeCalls) Current() (calls.Call, bool) { return calls.Call{}, false }
func (f fakeCalls) Get(id string) (calls.Call, error) {
	if c, ok := f[id]; ok {
		return c, nil
	}
	return calls.Call{}, calls.ErrNotFound
}

// TestCallHistoryFromLog: the history folds each call's events; a call
// whose end the log has not committed yet takes it from the manager; a
// call camd never saw end keeps its last state; a call whose ringing is
// not in the log is left out.
func TestCallHistoryFromLog(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
	ev := func(id uint64, kind, call string, at time.Duration, data map[string]string) eventlog.Event {
		d := map[string]string{"call": call}
		for k, v := range data {
			d[k] = v
		}
		return eventlog.Event{ID: id, Kind: kind, Time: t0.Add(at), Data: d}
	}
	log := &fakeEvents{events: []eventlog.Event{
		ev(1, "call.ended", "gone", 0, map[string]string{"state": "ended"}), // its ringing was pruned
		ev(2, "call.ringing", "a", time.Second, map[string]string{"state": "ringing", "source": "doorbell"}),
		ev(3, "call.answered", "a", 2*time.Second, map[string]string{"state": "answered", "user": "u1"}),
		ev(4, "call.ended", "a", 32*time.Second, map[string]string{"state": "ended", "user": "u1", "reason": "hung up", "seconds": "30"}),
		ev(5, "call.ringing", "b", time.Minute, map[string]string{"state": "ringing", "source": "api", "user": "u2"}),
		ev(6, "call.answered", "b", time.Minute+time.Second, map[string]string{"state": "answered", "user": "u2"}),
		ev(7, "call.ringing", "c", 2*time.Minute, map[string]string{"state": "ringing", "source": "doorbell"}),
	}}
	list := fakeCalls{"b": {ID: "b", State: calls.Ended, Answered: t0.Add(time.Minute + time.Second), Finished: t0.Add(time.Minute + 11*time.Second), Reason: "hung up"}}
	routes := (&Calls{List: list, Log: log}).routes()
	var out CallList
	answer(t, do(t, routes, request{method: "GET", path: "/api/v1/calls", token: "viewer-token"}), 200, &out)
	if len(out.History) != 3 {
		t.Fatalf("history %+v", out.History)
	}
	c, b, a := out.History[0], out.History[1], out.History[2]
	if a.ID != "a" || a.State != calls.Ended || a.AnsweredBy != "u1" || a.EndedBy != "u1" || a.Seconds != 30 || a.Reason != "hung up" || len(a.Transitions) != 3 || a.Transitions[2].Event != 4 {
		t.Errorf("a: %+v", a)
	}
	if b.ID != "b" || b.State != calls.Ended || b.Seconds != 10 || b.By != "u2" || b.Source != "api" {
		t.Errorf("b, ended but not yet in the log: %+v", b)
	}
	if c.ID != "c" || c.State != calls.Ringing {
		t.Errorf("c, never seen to end: %+v", c)
	}
	if log.asked.From != (time.Time{}) || !log.asked.Oldest || len(log.asked.Kinds) != 1 || log.asked.Kinds[0] != "call.*" {
		t.Errorf("asked the log %+v", log.asked)
	}
}
