package talk

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/pion/rtp"
)

// arrive plays pkts into p, packet i arriving at start + 20 ms·i +
// offset(i), in arrival order (synctest's clock).
func arrive(p *Player, pkts []*rtp.Packet, offset func(i int) time.Duration) {
	start := time.Now()
	type arrival struct {
		at time.Duration
		i  int
	}
	var order []arrival
	for i := range pkts {
		order = append(order, arrival{time.Duration(i)*20*time.Millisecond + offset(i), i})
	}
	for k := 1; k < len(order); k++ { // insertion sort: arrival order
		for j := k; j > 0 && order[j].at < order[j-1].at; j-- {
			order[j], order[j-1] = order[j-1], order[j]
		}
	}
	for _, a := range order {
		time.Sleep(time.Until(start.Add(a.at)))
		p.Packet("audio/PCMU", pkts[a.i])
	}
}

// TestDepthFollowsJitter: the depth is JitterMultiple times RFC 3550's
// interarrival jitter estimate, in packets, from MinDepth to MaxDepth;
// a buffer sized so waits out a packet that a fixed two-packet buffer
// gives up for lost.
func TestDepthFollowsJitter(t *testing.T) {
	for _, tc := range []struct {
		name       string
		swing      time.Duration // packets arrive alternately this early and late
		jitter     time.Duration // the estimate it converges to: twice the swing, or at least (reordered)
		depth      int
		fixedDepth int
	}{
		{"steady", 0, 0, 2, 0},
		{"15 ms swing", 15 * time.Millisecond, 30 * time.Millisecond, 5, 0},
		{"200 ms swing", 200 * time.Millisecond, 100 * time.Millisecond, 10, 0},
		{"15 ms swing, fixed depth 2", 15 * time.Millisecond, 30 * time.Millisecond, 2, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := New(&fakeSpeaker{}, Options{Depth: tc.fixedDepth})
				pkts := pcmuTone(1000, 201) // ending on a pair that swapped
				arrive(p, pkts, func(i int) time.Duration {
					if i%2 == 1 {
						return tc.swing
					}
					return -tc.swing
				})
				st := p.Stats()
				d := st.Jitter - tc.jitter
				if tc.swing > 20*time.Millisecond {
					d = min(d, 0) // reordered: more than the swing's
				}
				if d < -time.Millisecond || d > time.Millisecond {
					t.Errorf("jitter %v, want about %v", st.Jitter, tc.jitter)
				}
				if st.Depth != tc.depth {
					t.Errorf("depth %d, want %d", st.Depth, tc.depth)
				}
			})
		})
	}
	// After jitter like the 15 ms swing's, a packet 4 packets late plays
	// in a buffer that follows the jitter (depth 5) and is concealed by
	// a fixed buffer of 2.
	for _, tc := range []struct {
		depth                   int
		played, concealed, late uint64
	}{{0, 260, 0, 0}, {2, 259, 1, 1}} {
		synctest.Test(t, func(t *testing.T) {
			p := New(&fakeSpeaker{}, Options{Depth: tc.depth})
			pkts := pcmuTone(1000, 260)
			arrive(p, pkts, func(i int) time.Duration {
				switch {
				case i == 250:
					return 4*20*time.Millisecond + time.Millisecond // after 251 to 254
				case i%2 == 1:
					return 15 * time.Millisecond
				}
				return -15 * time.Millisecond
			})
			p.Flush()
			if st := p.Stats(); st.Played != tc.played || st.Concealed != tc.concealed || st.Late != tc.late {
				t.Errorf("depth %d: %+v, want %d played, %d concealed, %d late", tc.depth, st, tc.played, tc.concealed, tc.late)
			}
		})
	}
}
