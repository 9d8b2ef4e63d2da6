package whep

import (
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/camd-project/camd/media"
)

// TestFanOutPacesReplayWithoutHoldingOthers: one shard serves two
// viewers of a passthrough stream. The viewer that joins late replays
// the cached group of pictures paced at the replay bitrate, while the
// viewer already live gets each new frame at once; both get every frame
// in order, and a viewer whose write fails leaves the shard alone.
func TestFanOutPacesReplayWithoutHoldingOthers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const bitrate = 2_400_000 // a 3 KB frame every 10 ms
		h := media.NewHub(media.HubOptions{})
		h.Begin(media.SourceInfo{Name: "test"})
		fo := newFanout(nil, bitrate)
		sh := fo.shards[0]
		stop := make(chan struct{})
		running := make(chan struct{})
		go func() {
			defer close(running)
			sh.run(stop)
		}()
		defer func() { close(stop); <-running }()

		type viewer struct {
			w    *recordingWriter
			mu   sync.Mutex
			sent []*media.Frame
			err  error
		}
		sent := func(v *viewer) []*media.Frame {
			v.mu.Lock()
			defer v.mu.Unlock()
			return v.sent
		}
		join := func() *viewer {
			v := &viewer{}
			var tr *track
			tr, v.w = boundTrack(webrtc.RTPCodecTypeVideo)
			c := h.Subscribe(media.ConsumerOptions{Notify: sh.notify})
			sh.load.Add(1)
			sh.add(&outlet{c: c, video: tr,
				sent: func(f *media.Frame, _ bool) {
					v.mu.Lock()
					v.sent = append(v.sent, f)
					v.mu.Unlock()
				},
				done: func(err error) {
					v.mu.Lock()
					v.err = err
					v.mu.Unlock()
				}})
			return v
		}
		var frames []*media.Frame
		publish := func(key bool) {
			f := &media.Frame{Kind: media.Video, Key: key, PTS: time.Duration(len(frames)) * 33 * time.Millisecond, Data: fakeAU(key, len(frames))}
			frames = append(frames, f)
			h.Publish(f)
		}

		live := join()
		for i := range 10 {
			publish(i == 0)
		}
		synctest.Wait()
		late := join()
		synctest.Wait()
		if n := len(sent(late)); n != 1 {
			t.Fatalf("the late viewer sent %d replayed frames at once, want the keyframe alone", n)
		}
		publish(false)
		synctest.Wait()
		if n := len(sent(live)); n != 11 {
			t.Fatalf("the live viewer got %d of 11 frames while the other replayed", n)
		}
		if n := len(sent(late)); n != 1 {
			t.Fatalf("the late viewer's replay was not paced: %d frames", n)
		}
		time.Sleep(200 * time.Millisecond)
		synctest.Wait()
		for name, v := range map[string]*viewer{"live": live, "late": late} {
			if len(sent(v)) != len(frames) {
				t.Fatalf("%s viewer: %d of %d frames", name, len(sent(v)), len(frames))
			}
			for i := range frames {
				if sent(v)[i] != frames[i] {
					t.Fatalf("%s viewer: frame %d out of order", name, i)
				}
			}
		}

		// A failed write ends that viewer alone.
		late.w.mu.Lock()
		late.w.fail = errors.New("gone")
		late.w.mu.Unlock()
		publish(false)
		synctest.Wait()
		late.mu.Lock()
		err := late.err
		late.mu.Unlock()
		if !errors.Is(err, errSend) || len(sent(live)) != len(frames) {
			t.Fatalf("after a failed write: late viewer's end %v, live viewer %d of %d frames", err, len(sent(live)), len(frames))
		}
		if n := sh.load.Load(); n != 1 {
			t.Fatalf("the shard counts %d viewers, want 1", n)
		}
	})
}
