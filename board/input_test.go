package board

import (
	"strings"
	"testing"
	"time"
)

// TestButtonStateMachine feeds raw levels at given times (ms) and checks
// the events, without goroutines.
func TestButtonStateMachine(t *testing.T) {
	type step struct {
		at  int  // ms
		raw bool // level observed (an edge) at this time
	}
	cases := []struct {
		name    string
		initial bool
		steps   []step
		until   int // run deadlines up to this time
		want    string
	}{
		{"short press", false, []step{{0, true}, {200, false}}, 1000, "change:true down change:false press"},
		{"bounce on press and release", false,
			[]step{{0, true}, {2, false}, {4, true}, {6, false}, {8, true}, {300, false}, {305, true}, {310, false}},
			1000, "change:true down change:false press"},
		{"glitch shorter than debounce", false, []step{{0, true}, {10, false}}, 1000, ""},
		{"long press fires hold while down", false, []step{{0, true}}, 10_100, "change:true down hold"},
		{"long press then release: no press", false, []step{{0, true}, {12_000, false}}, 13_000, "change:true down hold change:false"},
		{"just under the hold", false, []step{{0, true}, {9_990, false}}, 11_000, "change:true down change:false press"},
		{"held 10 s counted from the debounced press", false, []step{{0, true}, {10_020, false}}, 11_000, "change:true down hold change:false"},
		{"held through restart", true, []step{{5_000, false}, {6_000, true}, {6_100, false}}, 20_000,
			"change:false change:true down change:false press"},
		{"held through restart, never released", true, []step{{1, true}}, 60_000, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got []string
			rec := func(s string) func() { return func() { got = append(got, s) } }
			opts := WatchOptions{Debounce: 30 * time.Millisecond, Hold: 10 * time.Second,
				OnChange: func(a bool) {
					if a {
						got = append(got, "change:true")
					} else {
						got = append(got, "change:false")
					}
				},
				OnDown: rec("down"), OnPress: rec("press"), OnHold: rec("hold")}
			t0 := time.Unix(1000, 0)
			b := newButton(c.initial, opts)
			raw := c.initial
			// Run every deadline before now, reading the level then.
			runUntil := func(now time.Time) {
				for d := b.deadline(); !d.IsZero() && !d.After(now); d = b.deadline() {
					b.tick(raw, d)
				}
			}
			for _, s := range c.steps {
				now := t0.Add(time.Duration(s.at) * time.Millisecond)
				runUntil(now)
				raw = s.raw
				b.observe(raw, now)
			}
			runUntil(t0.Add(time.Duration(c.until) * time.Millisecond))
			if g := strings.Join(got, " "); g != c.want {
				t.Fatalf("events %q, want %q", g, c.want)
			}
		})
	}
}
