package whep

import (
	"testing"
	"time"

	"github.com/pion/rtp"
)

// packets cuts n frames of k packets each (single NAL unit payloads),
// starting at sequence number seq0.
func packets(seq0 uint16, n, k int) []*rtp.Packet {
	var ps []*rtp.Packet
	seq := seq0
	for f := range n {
		for i := range k {
			ps = append(ps, &rtp.Packet{
				Header:  rtp.Header{SequenceNumber: seq, Timestamp: uint32(1000 + 3000*f), Marker: i == k-1},
				Payload: []byte{0x41, byte(f), byte(i)},
			})
			seq++
		}
	}
	return ps
}

func TestAssembler(t *testing.T) {
	t0 := time.Unix(0, 0)
	cases := []struct {
		name      string
		seq0      uint16
		order     func([]*rtp.Packet) []*rtp.Packet
		late      time.Duration // arrival gap of the reordered packet
		wantOut   int
		wantLost  uint64
		wantOrder bool
	}{
		{"in order", 10, func(p []*rtp.Packet) []*rtp.Packet { return p }, 0, 5, 0, true},
		{"sequence wraps", 65530, func(p []*rtp.Packet) []*rtp.Packet { return p }, 0, 5, 0, true},
		{"retransmission arrives late but in time", 10, func(p []*rtp.Packet) []*rtp.Packet {
			return append(append(append([]*rtp.Packet{}, p[:4]...), p[5:]...), p[4])
		}, 100 * time.Millisecond, 5, 0, true},
		{"duplicates", 10, func(p []*rtp.Packet) []*rtp.Packet { return append(p[:6:6], p[3:]...) }, 0, 5, 0, true},
		{"packet never arrives", 10, func(p []*rtp.Packet) []*rtp.Packet {
			return append(append([]*rtp.Packet{}, p[:4]...), p[5:]...)
		}, 0, 4, 1, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got []uint32
			a := &assembler{onFrame: func(au []byte, ts uint32) {
				if len(au) == 0 {
					t.Error("empty access unit")
				}
				got = append(got, ts)
			}}
			ps := c.order(packets(c.seq0, 5, 3))
			now := t0
			for i, p := range ps {
				if i == len(ps)-1 {
					now = now.Add(c.late)
				}
				a.push(p, now)
			}
			// Time passes and one more frame arrives: anything stuck is lost.
			now = now.Add(time.Second)
			for _, p := range packets(c.seq0+15, 1, 1) {
				p.Timestamp = 1000 + 3000*9
				a.push(p, now)
			}
			if len(got) != c.wantOut+1 || a.lost != c.wantLost {
				t.Fatalf("handed over %d frames, lost %d; want %d and %d", len(got), a.lost, c.wantOut+1, c.wantLost)
			}
			for i := 1; i < len(got); i++ {
				if got[i] <= got[i-1] {
					t.Fatalf("frames out of order: %v", got)
				}
			}
		})
	}
}
