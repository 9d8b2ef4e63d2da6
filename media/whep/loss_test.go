package whep

import (
	"context"
	"math/rand/v2"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// lossyConn drops a share of the RTP packets it receives (RFC 7983: first
// byte 128..191, and not RTCP), leaving ICE, DTLS and RTCP alone.
type lossyConn struct {
	net.PacketConn
	permille int
	dropped  atomic.Int64
}

func (c *lossyConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(b)
		if err != nil || n < 2 {
			return n, addr, err
		}
		isRTP := b[0] >= 128 && b[0] <= 191 && !(b[1] >= 192 && b[1] <= 223)
		if isRTP && rand.IntN(1000) < c.permille {
			c.dropped.Add(1)
			continue
		}
		return n, addr, nil
	}
}

// TestNACKRepairsLoss drops 3% of the viewer's incoming RTP: the viewer's
// NACKs are answered from camd's history and every frame arrives whole,
// from an encoding source (RTCP read by a goroutine, through congestion
// control) and from a passthrough one (RTCP handed over by SRTCP's read
// loop, engine.newAPI).
func TestNACKRepairsLoss(t *testing.T) {
	for _, forces := range []bool{true, false} {
		t.Run(map[bool]string{true: "encoding", false: "passthrough"}[forces], func(t *testing.T) {
			info := fakeEncoder
			info.ForcesKeyframes = forces
			nackRepairsLoss(t, newTestServerOf(t, Options{}, info))
		})
	}
}

func nackRepairsLoss(t *testing.T, ts *testServer) {
	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	lossy := &lossyConn{PacketConn: udp, permille: 30}
	ctx, cancel := context.WithDeadline(context.Background(), deadline(t))
	defer cancel()
	// View until enough was lost and repaired to judge by: at least 10
	// packets dropped, some resent, and 200 frames sent.
	var resent, sent uint64
	watched := stopWhen(ctx, cancel, func() bool {
		// The server's counters are read while the session is alive.
		if st := ts.srv.Stats(); len(st.Sessions) == 1 {
			resent = max(resent, st.Sessions[0].Resent)
			sent = max(sent, st.Sessions[0].Frames)
		}
		return lossy.dropped.Load() >= 10 && resent > 0 && sent >= 200
	})
	st, err := View(ctx, ts.url, ViewOptions{Conn: lossy})
	cancel()
	watched()
	if err != nil {
		t.Fatal(err)
	}
	if lossy.dropped.Load() < 10 {
		t.Fatalf("only %d packets dropped: the test did not exercise loss", lossy.dropped.Load())
	}
	if resent == 0 {
		t.Fatal("camd resent nothing")
	}
	if st.FramesLost > st.FramesReceived/50 {
		t.Fatalf("lost %d of %d frames with NACK (dropped %d packets, resent %d)", st.FramesLost, st.FramesReceived, lossy.dropped.Load(), resent)
	}
	t.Logf("dropped %d packets, camd resent %d, frames %d received / %d lost", lossy.dropped.Load(), resent, st.FramesReceived, st.FramesLost)
}

// TestHeavyLossLowersEncoderBitrate checks that the viewer's congestion
// feedback steers the hub's target bitrate down from the start value.
func TestHeavyLossLowersEncoderBitrate(t *testing.T) {
	ts := newTestServer(t, Options{MinBitrate: 100_000, StartBitrate: 2_000_000, MaxBitrate: 4_000_000})
	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	lossy := &lossyConn{PacketConn: udp, permille: 300}
	// Watch until the target went down.
	ctx, cancel := context.WithDeadline(context.Background(), deadline(t))
	defer cancel()
	var lowest int
	watched := stopWhen(ctx, cancel, func() bool {
		if b := ts.hub.TargetBitrate(); b > 0 && (lowest == 0 || b < lowest) {
			lowest = b
		}
		return lowest > 0 && lowest < 2_000_000
	})
	View(ctx, ts.url, ViewOptions{Conn: lossy})
	cancel()
	watched()
	if lowest == 0 || lowest >= 2_000_000 {
		t.Fatalf("with 30%% loss the encoder target stayed at %d bps", lowest)
	}
	if lowest < 100_000 {
		t.Fatalf("target %d bps is below the configured minimum", lowest)
	}
	t.Logf("lowest target %d bps", lowest)
}

// stopWhen polls cond every 20 ms while ctx lasts and cancels ctx once
// cond holds. The function it returns waits until polling has stopped.
func stopWhen(ctx context.Context, cancel context.CancelFunc, cond func() bool) (wait func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if cond() {
				cancel()
				return
			}
		}
	}()
	return func() { <-done }
}
