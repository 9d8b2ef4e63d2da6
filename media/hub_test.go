package media

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"
)

// video returns a video frame; key frames carry a marker byte so tests can
// tell frames apart by content too.
func video(key bool, pts time.Duration) *Frame {
	return &Frame{Kind: Video, Key: key, PTS: pts, Data: []byte{0, 0, 0, 1, 0x65}}
}

func audio(pts time.Duration) *Frame {
	return &Frame{Kind: Audio, PTS: pts, Data: []byte{0xfc}}
}

// drain reads everything queued without waiting.
func drain(t *testing.T, c *Consumer) (frames []*Frame, replays []bool) {
	t.Helper()
	for c.Len() > 0 {
		f, r, err := c.Next(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		frames = append(frames, f)
		replays = append(replays, r)
	}
	return frames, replays
}

func TestHubFanOutKeepsOrder(t *testing.T) {
	h := NewHub(HubOptions{})
	h.Begin(SourceInfo{Name: "test"})
	var cs []*Consumer
	for range 3 {
		cs = append(cs, h.Subscribe(ConsumerOptions{}))
	}
	var sent []*Frame
	for i := range 60 {
		f := video(i%30 == 0, time.Duration(i)*33*time.Millisecond)
		if i%2 == 1 {
			a := audio(f.PTS)
			h.Publish(a)
			sent = append(sent, a)
		}
		h.Publish(f)
		sent = append(sent, f)
	}
	for i, c := range cs {
		got, _ := drain(t, c)
		if len(got) != len(sent) {
			t.Fatalf("consumer %d got %d frames, want %d", i, len(got), len(sent))
		}
		for j := range got {
			if got[j] != sent[j] {
				t.Fatalf("consumer %d frame %d: got seq %d, want seq %d", i, j, got[j].Seq, sent[j].Seq)
			}
			if j > 0 && got[j].Seq <= got[j-1].Seq {
				t.Fatalf("consumer %d: seq not increasing at %d", i, j)
			}
		}
	}
}

func TestHubSlowConsumerDropsToNextKeyframe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := NewHub(HubOptions{})
		h.Begin(SourceInfo{Name: "passthrough"})
		slow := h.Subscribe(ConsumerOptions{Name: "slow", QueueFrames: 4})
		fast := h.Subscribe(ConsumerOptions{Name: "fast"})

		ctx, cancel := context.WithCancel(context.Background())
		var fastGot []*Frame
		read := make(chan struct{})
		go func() {
			defer close(read)
			for {
				f, _, err := fast.Next(ctx)
				if err != nil {
					return
				}
				fastGot = append(fastGot, f)
			}
		}()

		// Publish never waits for a consumer: the slow one does not read.
		var sent []*Frame
		for i := range 30 {
			f := video(i%10 == 0, time.Duration(i)*time.Millisecond)
			h.Publish(f)
			sent = append(sent, f)
		}
		got, _ := drain(t, slow)
		// The slow consumer holds the first four frames, then loses frames 4..29
		// because nothing more fits; it resumes only at a keyframe.
		if len(got) != 4 {
			t.Fatalf("slow consumer got %d frames, want 4", len(got))
		}
		for i, f := range got {
			if f != sent[i] {
				t.Fatalf("slow frame %d is seq %d, want %d", i, f.Seq, sent[i].Seq)
			}
		}
		st := slow.Stats()
		if st.Dropped != 26 {
			t.Fatalf("dropped = %d, want 26", st.Dropped)
		}
		// Now that it reads again, the next P-frame is skipped and it restarts
		// at the next keyframe.
		h.Publish(video(false, time.Second))
		k := video(true, time.Second+time.Millisecond)
		h.Publish(k)
		got, _ = drain(t, slow)
		if len(got) != 1 || got[0] != k {
			t.Fatalf("after overflow the slow consumer got %v, want only the keyframe", got)
		}
		synctest.Wait() // the fast reader has taken everything and waits again
		cancel()
		<-read
		if len(fastGot) != len(sent)+2 {
			t.Fatalf("fast consumer got %d frames, want %d", len(fastGot), len(sent)+2)
		}
	})
}

func TestHubOverflowAsksEncoderForKeyframeAtMostOncePerGap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := NewHub(HubOptions{})
		h.Begin(SourceInfo{Name: "encoder", ForcesKeyframes: true})
		c := h.Subscribe(ConsumerOptions{QueueFrames: 1})
		if !h.KeyframeRequested() {
			t.Fatal("joining did not request a keyframe")
		}
		h.Publish(video(true, 0))
		h.Publish(video(false, 1)) // overflows
		if !h.KeyframeRequested() {
			t.Fatal("overflow did not request a keyframe")
		}
		drain(t, c)
		time.Sleep(time.Second - time.Nanosecond)
		h.Publish(video(true, 2))
		h.Publish(video(false, 3)) // overflows again within the gap
		if h.KeyframeRequested() {
			t.Fatal("second overflow within a second forced another keyframe")
		}
		time.Sleep(time.Nanosecond)
		drain(t, c)
		h.Publish(video(true, 4))
		h.Publish(video(false, 5))
		if !h.KeyframeRequested() {
			t.Fatal("overflow after the gap did not request a keyframe")
		}
	})
}

func TestHubJoinForcesOneCoalescedKeyframe(t *testing.T) {
	h := NewHub(HubOptions{})
	h.Begin(SourceInfo{Name: "synthetic", ForcesKeyframes: true})
	h.Publish(video(true, 0))
	h.Publish(video(false, 1))
	if h.KeyframeRequested() {
		t.Fatal("keyframe requested with no consumer")
	}
	a := h.Subscribe(ConsumerOptions{})
	b := h.Subscribe(ConsumerOptions{})
	if !h.KeyframeRequested() {
		t.Fatal("no keyframe requested for joining consumers")
	}
	if h.KeyframeRequested() {
		t.Fatal("two joins produced two keyframe requests")
	}
	h.Publish(audio(2))
	h.Publish(video(false, 2)) // encoded before the request was seen
	k := video(true, 3)
	h.Publish(k)
	for _, c := range []*Consumer{a, b} {
		got, replays := drain(t, c)
		if len(got) != 2 || got[0].Kind != Audio || got[1] != k {
			t.Fatalf("got %d frames, want the audio frame then the keyframe", len(got))
		}
		if replays[0] || replays[1] {
			t.Fatal("live frames marked as replayed")
		}
		if st := c.Stats(); st.Skipped != 1 {
			t.Fatalf("skipped = %d, want 1", st.Skipped)
		}
	}
	if got := h.Stats().ForcedKeys; got != 1 {
		t.Fatalf("forced keys = %d, want 1", got)
	}
}

func TestHubPassthroughJoinReplaysCachedGOP(t *testing.T) {
	h := NewHub(HubOptions{})
	h.Begin(SourceInfo{Name: "file"})
	h.Publish(video(false, 0)) // before any keyframe: not cached
	k := video(true, 1)
	p1 := video(false, 2)
	h.Publish(k)
	h.Publish(audio(2))
	h.Publish(p1)
	c := h.Subscribe(ConsumerOptions{})
	if h.KeyframeRequested() {
		t.Fatal("passthrough join requested a keyframe it cannot get")
	}
	live := video(false, 3)
	h.Publish(live)
	got, replays := drain(t, c)
	want := []*Frame{k, p1, live}
	wantReplay := []bool{true, true, false}
	if len(got) != len(want) {
		t.Fatalf("got %d frames, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] || replays[i] != wantReplay[i] {
			t.Fatalf("frame %d: seq %d replay %v, want seq %d replay %v", i, got[i].Seq, replays[i], want[i].Seq, wantReplay[i])
		}
	}

	// A viewer that lost its decoder's state starts over from the cache.
	c.RequestKeyframe()
	got, replays = drain(t, c)
	if len(got) != 3 || got[0] != k || !replays[0] || got[2] != live || !replays[2] {
		t.Fatalf("RequestKeyframe replayed %d frames, want k, p1, live", len(got))
	}
}

// TestHubJumpToLive: a passthrough source that can ask its encoder for a
// keyframe is asked as a viewer that jumps to live joins; the viewer starts
// from the cached group of pictures and, when the keyframe comes, drops
// the video it has not read yet (the audio stays) and goes on live from
// it. A recorder (no JumpToLive) gets every frame and asks for nothing.
func TestHubJumpToLive(t *testing.T) {
	h := NewHub(HubOptions{})
	asked := 0
	h.Begin(SourceInfo{Name: "command", RequestKeyframe: func() { asked++ }})
	k := video(true, 0)
	p1 := video(false, 1)
	h.Publish(k)
	h.Publish(p1)
	rec := h.Subscribe(ConsumerOptions{Name: "recorder"})
	if asked != 0 {
		t.Fatalf("a recorder's join asked for %d keyframes", asked)
	}
	v := h.Subscribe(ConsumerOptions{Name: "viewer", JumpToLive: true})
	if asked != 1 || h.Stats().ForcedKeys != 1 {
		t.Fatalf("a viewer's join asked for %d keyframes (stats %d), want 1", asked, h.Stats().ForcedKeys)
	}
	// The viewer reads the cached keyframe (its first picture), then
	// falls behind: the old group goes on and audio comes meanwhile.
	if f, replay, _ := v.TryNext(); f != k || !replay {
		t.Fatalf("first frame %v (replay %v), want the cached keyframe", f, replay)
	}
	p2, a, p3 := video(false, 2), audio(2), video(false, 3)
	for _, f := range []*Frame{p2, a, p3} {
		h.Publish(f)
	}
	fresh, p4 := video(true, 4), video(false, 5)
	h.Publish(fresh)
	h.Publish(p4)
	got, replays := drain(t, v)
	want, wantReplay := []*Frame{a, fresh, p4}, []bool{false, false, false}
	if len(got) != len(want) {
		t.Fatalf("viewer got %d frames after the cached keyframe, want the audio, the new keyframe and what follows", len(got))
	}
	for i := range want {
		if got[i] != want[i] || replays[i] != wantReplay[i] {
			t.Fatalf("viewer frame %d: seq %d replay %v, want seq %d replay %v", i, got[i].Seq, replays[i], want[i].Seq, wantReplay[i])
		}
	}
	if st := v.Stats(); st.Skipped != 3 { // p1 (replayed), p2, p3
		t.Fatalf("viewer skipped %d frames, want 3", st.Skipped)
	}
	// Only the keyframe asked for makes the jump: the next one is just
	// the next frame.
	k3 := video(true, 6)
	h.Publish(video(false, 5))
	h.Publish(k3)
	if got, _ := drain(t, v); len(got) != 2 || got[1] != k3 {
		t.Fatalf("after the jump the viewer got %d frames, want both", len(got))
	}
	if got, _ := drain(t, rec); len(got) != 9 { // k and p1 replayed, then 7
		t.Fatalf("the recorder got %d frames, want all 9", len(got))
	}

	// A viewer whose decoder lost its way (PLI) starts over from the
	// cache and asks again.
	v.RequestKeyframe()
	if asked != 2 {
		t.Fatalf("RequestKeyframe asked for %d keyframes in all, want 2", asked)
	}
	// An ONVIF client's SetSynchronizationPoint asks for every consumer.
	if !h.AskKeyframe() || asked != 3 {
		t.Fatalf("AskKeyframe: asked %d in all, want 3", asked)
	}
	// A viewer that joins when nothing is cached asks too, and waits.
	h.Begin(SourceInfo{Name: "command", RequestKeyframe: func() { asked++ }})
	w := h.Subscribe(ConsumerOptions{Name: "viewer", JumpToLive: true})
	h.Publish(video(false, 0))
	if asked != 4 || w.Len() != 0 {
		t.Fatalf("a join with nothing cached asked %d in all and queued %d frames", asked, w.Len())
	}
}

func TestHubGOPLargerThanCacheWaitsForKeyframe(t *testing.T) {
	h := NewHub(HubOptions{GOPCacheBytes: 12})
	h.Begin(SourceInfo{Name: "file"})
	h.Publish(video(true, 0))
	h.Publish(video(false, 1))
	h.Publish(video(false, 2)) // 15 bytes: over the cache bound
	c := h.Subscribe(ConsumerOptions{})
	h.Publish(video(false, 3))
	k := video(true, 4)
	h.Publish(k)
	got, _ := drain(t, c)
	if len(got) != 1 || got[0] != k {
		t.Fatalf("got %d frames, want only the next keyframe", len(got))
	}
}

func TestHubLastKeyframeOutlivesTheGOPCache(t *testing.T) {
	h := NewHub(HubOptions{GOPCacheBytes: 12})
	h.Begin(SourceInfo{Name: "file"})
	if h.LastKeyframe() != nil {
		t.Fatal("a keyframe before the source published one")
	}
	k := video(true, 0)
	h.Publish(k)
	h.Publish(video(false, 1))
	h.Publish(video(false, 2)) // over the cache bound: joiners wait
	if h.LastKeyframe() != k {
		t.Fatal("LastKeyframe lost the keyframe with the GOP cache")
	}
	k2 := video(true, 3)
	h.Publish(k2)
	if h.LastKeyframe() != k2 {
		t.Fatal("LastKeyframe is not the newest")
	}
	h.Begin(SourceInfo{Name: "restarted"})
	if h.LastKeyframe() != nil {
		t.Fatal("a restarted source kept the old run's keyframe")
	}
}

func TestHubBeginStartsNewEpochAtKeyframe(t *testing.T) {
	h := NewHub(HubOptions{})
	h.Begin(SourceInfo{Name: "run1"})
	c := h.Subscribe(ConsumerOptions{})
	h.Publish(video(true, 0))
	first, _ := drain(t, c)
	h.Begin(SourceInfo{Name: "run2"})
	h.Publish(video(false, 0)) // a restarted source must begin with a keyframe
	k := video(true, 0)
	h.Publish(k)
	got, _ := drain(t, c)
	if len(got) != 1 || got[0] != k {
		t.Fatalf("after restart got %d frames, want the new keyframe", len(got))
	}
	if got[0].Epoch() == first[0].Epoch() {
		t.Fatal("epoch did not change across Begin")
	}
}

func TestConsumerCloseAndCancel(t *testing.T) {
	defer goleak.VerifyNone(t)
	h := NewHub(HubOptions{})
	h.Begin(SourceInfo{})
	ctx, cancel := context.WithCancel(context.Background())
	c := h.Subscribe(ConsumerOptions{})
	errs := make(chan error, 2)
	go func() { _, _, err := c.Next(ctx); errs <- err }()
	cancel()
	if err := <-errs; !errors.Is(err, context.Canceled) {
		t.Fatalf("Next after cancel: %v", err)
	}

	d := h.Subscribe(ConsumerOptions{})
	go func() { _, _, err := d.Next(context.Background()); errs <- err }()
	h.Close()
	if err := <-errs; !errors.Is(err, ErrClosed) {
		t.Fatalf("Next after hub Close: %v", err)
	}
	c.Close()
	c.Close()
	h.Close()
	h.Publish(video(true, 0)) // ignored, no panic
	if _, _, err := h.Subscribe(ConsumerOptions{}).Next(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Subscribe on a closed hub: %v", err)
	}
	if n := len(h.Stats().Consumers); n != 0 {
		t.Fatalf("%d consumers left after Close", n)
	}
}

// TestRequestKeyframeAfterCloseIsIgnored: a consumer that left its hub
// (a viewer's PLI arriving as it goes) gets nothing queued again.
func TestRequestKeyframeAfterCloseIsIgnored(t *testing.T) {
	h := NewHub(HubOptions{})
	h.Begin(SourceInfo{Name: "file"})
	h.Publish(video(true, 0))
	h.Publish(video(false, 1))
	c := h.Subscribe(ConsumerOptions{})
	c.Close()
	c.RequestKeyframe()
	if n := c.Len(); n != 0 {
		t.Fatalf("a closed consumer was refilled with %d frames", n)
	}
	if _, _, err := c.Next(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Next after Close: %v", err)
	}
}

func TestHubManyReadersNoLeak(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := NewHub(HubOptions{})
		h.Begin(SourceInfo{Name: "synthetic", ForcesKeyframes: true})
		var wg sync.WaitGroup
		counts := make([]int, 8)
		for i := range counts {
			c := h.Subscribe(ConsumerOptions{})
			wg.Go(func() {
				for {
					if _, _, err := c.Next(context.Background()); err != nil {
						return
					}
					counts[i]++
				}
			})
		}
		for i := range 100 {
			h.Publish(video(i%25 == 0, time.Duration(i)))
			synctest.Wait() // every reader has taken the frame
		}
		h.Close()
		wg.Wait()
		for i, n := range counts {
			if n != 100 {
				t.Fatalf("reader %d received %d frames, want 100", i, n)
			}
		}
	})
}

func BenchmarkHubPublish(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		b.Run(map[int]string{1: "consumers=1", 10: "consumers=10", 100: "consumers=100"}[n], func(b *testing.B) {
			h := NewHub(HubOptions{})
			h.Begin(SourceInfo{ForcesKeyframes: true})
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			for range n {
				c := h.Subscribe(ConsumerOptions{})
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						if _, _, err := c.Next(ctx); err != nil {
							return
						}
					}
				}()
			}
			f := video(true, 0)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				h.Publish(&Frame{Kind: Video, Key: i%60 == 0, Data: f.Data})
			}
			b.StopTimer()
			cancel()
			h.Close()
			wg.Wait()
		})
	}
}

func TestHubStatsByKindKeepDepartedConsumers(t *testing.T) {
	h := NewHub(HubOptions{})
	h.Begin(SourceInfo{ForcesKeyframes: true})
	a := h.Subscribe(ConsumerOptions{Name: "viewer aaaa", QueueFrames: 1})
	b := h.Subscribe(ConsumerOptions{Name: "viewer bbbb", QueueFrames: 1})
	r := h.Subscribe(ConsumerOptions{Name: "recorder", QueueFrames: 8})
	f := video(true, 0)
	for range 3 {
		h.Publish(&Frame{Kind: Video, Key: true, Data: f.Data})
	}
	a.Close()
	s := h.Stats()
	if s.Published != 3 || s.PublishedBytes != uint64(3*len(f.Data)) {
		t.Fatalf("published %d frames, %d bytes", s.Published, s.PublishedBytes)
	}
	// Each viewer queued one frame and dropped two; the recorder queued three.
	if v := s.ByKind["viewer"]; v.Dropped != 4 || v.Queued != 1 {
		t.Errorf("viewers: %+v", v)
	}
	if rec := s.ByKind["recorder"]; rec.Dropped != 0 || rec.Queued != 3 {
		t.Errorf("recorder: %+v", rec)
	}
	b.Close()
	r.Close()
	if v := h.Stats().ByKind["viewer"]; v.Dropped != 4 {
		t.Errorf("after the viewers left: %+v", v)
	}
}

// TestConsumersShareNotify: consumers that share a Notify channel put a
// token in it for each frame queued and when they close; TryNext returns
// each consumer's frames in order without waiting, nil once the queue is
// empty and ErrClosed after the close.
func TestConsumersShareNotify(t *testing.T) {
	h := NewHub(HubOptions{})
	h.Begin(SourceInfo{Name: "test"})
	notify := make(chan struct{}, 1)
	a := h.Subscribe(ConsumerOptions{Notify: notify})
	b := h.Subscribe(ConsumerOptions{Notify: notify})
	select {
	case <-notify:
		t.Fatal("a token before any frame")
	default:
	}
	frames := []*Frame{video(true, 0), video(false, 33*time.Millisecond)}
	for _, f := range frames {
		h.Publish(f)
	}
	select {
	case <-notify:
	default:
		t.Fatal("no token after the frames were published")
	}
	for _, c := range []*Consumer{a, b} {
		for i, want := range frames {
			if f, _, err := c.TryNext(); f != want || err != nil {
				t.Fatalf("frame %d: %v %v", i, f, err)
			}
		}
		if f, _, err := c.TryNext(); f != nil || err != nil {
			t.Fatalf("an empty queue gave %v %v", f, err)
		}
	}
	a.Close()
	select {
	case <-notify:
	default:
		t.Fatal("no token after a close")
	}
	if _, _, err := a.TryNext(); !errors.Is(err, ErrClosed) {
		t.Fatalf("after close: %v", err)
	}
}

// TestHubAskKeyframe: an encoding source is asked through
// KeyframeRequested; a source that can be asked nothing at all says so.
func TestHubAskKeyframe(t *testing.T) {
	h := NewHub(HubOptions{})
	h.Begin(SourceInfo{Name: "synthetic", ForcesKeyframes: true})
	if !h.AskKeyframe() || !h.KeyframeRequested() {
		t.Fatal("an encoding source was not asked")
	}
	h.Begin(SourceInfo{Name: "file"})
	if h.AskKeyframe() || h.KeyframeRequested() {
		t.Fatal("a source that cannot be asked for a keyframe was")
	}
}
