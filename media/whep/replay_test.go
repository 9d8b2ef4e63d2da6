package whep

import (
	"fmt"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/camd-project/camd/media"
)

// TestReplayBitrateSetsThePace: a viewer joining a passthrough stream
// gets the cached group of pictures at the replay bitrate
// (live.replay_bitrate): the keyframe at once, then each frame after
// the one before has had its time at that rate, so four times the rate
// replays the same pictures in a quarter of the time.
func TestReplayBitrateSetsThePace(t *testing.T) {
	took := map[int]time.Duration{}
	for _, bitrate := range []int{2_400_000, 9_600_000} {
		t.Run(fmt.Sprint(bitrate), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := media.NewHub(media.HubOptions{})
				h.Begin(media.SourceInfo{Name: "test"})
				var cached []*media.Frame
				for i := range 10 {
					f := &media.Frame{Kind: media.Video, Key: i == 0, PTS: time.Duration(i) * 33 * time.Millisecond, Data: fakeAU(i == 0, i)}
					cached = append(cached, f)
					h.Publish(f)
				}
				fo := newFanout(nil, bitrate)
				sh := fo.shards[0]
				stop, running := make(chan struct{}), make(chan struct{})
				go func() { defer close(running); sh.run(stop) }()
				defer func() { close(stop); <-running }()

				var got atomic.Int32
				done := make(chan struct{})
				tr, _ := boundTrack(webrtc.RTPCodecTypeVideo)
				c := h.Subscribe(media.ConsumerOptions{Notify: sh.notify})
				sh.load.Add(1)
				start := time.Now()
				sh.add(&outlet{c: c, video: tr,
					sent: func(*media.Frame, bool) {
						if got.Add(1) == int32(len(cached)) {
							close(done)
						}
					},
					done: func(error) {}})
				<-done
				took[bitrate] = time.Since(start)

				// Each frame but the last waits for the one before.
				var want time.Duration
				for _, f := range cached[:len(cached)-1] {
					want += replayPause(f, bitrate)
				}
				if d := took[bitrate] - want; d < 0 || d > time.Millisecond {
					t.Errorf("replayed %d frames in %v at %d bit/s, want %v", len(cached), took[bitrate], bitrate, want)
				}
			})
		})
	}
	if slow, fast := took[2_400_000], took[9_600_000]; fast <= 0 || slow < 3*fast {
		t.Errorf("four times the bitrate replayed in %v against %v", fast, slow)
	}
}

// TestReplayPacerMakesUpForLateTimers: the due times of a replayed GOP
// are counted from its first frame, so a timer that fires late (each
// frame sent 3 ms after it was due) delays the replay by that once, not
// once per frame; before, 60 frames of a GOP replayed at 1 Gbps took
// 150-350 ms on a loaded machine instead of a few.
func TestReplayPacerMakesUpForLateTimers(t *testing.T) {
	const bitrate = 8_000_000 // 1,000 bytes a millisecond
	f := &media.Frame{Kind: media.Video, Data: make([]byte, 1000)}
	var p replayPacer
	start := time.Unix(1000, 0)
	now := start
	for i := range 60 {
		due := p.sent(f, bitrate, now)
		if want := start.Add(time.Duration(i+1) * time.Millisecond); !due.Equal(want) {
			t.Fatalf("frame %d due at +%v, want +%v", i+1, due.Sub(start), want.Sub(start))
		}
		now = due.Add(3 * time.Millisecond) // the timer fired late
	}
}
