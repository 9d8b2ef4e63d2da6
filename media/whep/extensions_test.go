package whep

import (
	"context"
	"maps"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/camd-project/camd/media"
)

// stampedFrame is what a receiver read from the first packet of a video
// frame: its RTP timestamp and header extensions.
type stampedFrame struct {
	ts         uint32
	captured   time.Time // zero: no abs-capture-time
	playout    *rtp.PlayoutDelayExtension
	hasPlayout bool
}

// viewExtensions watches ts's live stream with a pion receiver that offers
// the header extensions uris, until it has read frames video frames; it
// returns the answer and what the first packet of each frame carried.
func viewExtensions(t *testing.T, ts *testServer, frames int, uris ...string) (string, []stampedFrame) {
	t.Helper()
	m := &webrtc.MediaEngine{}
	if err := m.RegisterCodec(h264CB, webrtc.RTPCodecTypeVideo); err != nil {
		t.Fatal(err)
	}
	for _, u := range uris {
		if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: u}, webrtc.RTPCodecTypeVideo); err != nil {
			t.Fatal(err)
		}
	}
	pc := loopbackPeer(t, m)
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	var (
		mu  sync.Mutex
		got []stampedFrame
	)
	enough := make(chan struct{})
	var wg sync.WaitGroup
	defer wg.Wait()
	defer pc.Close()
	pc.OnTrack(func(tr *webrtc.TrackRemote, r *webrtc.RTPReceiver) {
		ids := map[string]int{}
		for _, e := range r.GetParameters().HeaderExtensions {
			ids[e.URI] = e.ID
		}
		wg.Go(func() {
			last, started := uint32(0), false
			for {
				p, _, err := tr.ReadRTP()
				if err != nil {
					return
				}
				if started && p.Timestamp == last {
					continue // not the first packet of its frame
				}
				started, last = true, p.Timestamp
				sf := stampedFrame{ts: p.Timestamp}
				if id := ids[absCaptureTimeURI]; id != 0 {
					var e rtp.AbsCaptureTimeExtension
					if b := p.GetExtension(uint8(id)); b != nil {
						if err := e.Unmarshal(b); err != nil {
							t.Errorf("abs-capture-time %x: %v", b, err)
						}
						sf.captured = e.CaptureTime()
					}
				}
				if id := ids[playoutDelayURI]; id != 0 {
					if b := p.GetExtension(uint8(id)); b != nil {
						sf.hasPlayout = true
						sf.playout = &rtp.PlayoutDelayExtension{}
						if err := sf.playout.Unmarshal(b); err != nil {
							t.Errorf("playout-delay %x: %v", b, err)
						}
					}
				}
				mu.Lock()
				got = append(got, sf)
				if len(got) == frames {
					close(enough)
				}
				mu.Unlock()
			}
		})
	})
	o, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(o); err != nil {
		t.Fatal(err)
	}
	<-gathered
	resp, answer := do(t, http.MethodPost, ts.url, ContentTypeSDP, pc.LocalDescription().SDP)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST: %s %s", resp.Status, answer)
	}
	defer do(t, http.MethodDelete, ts.http.URL+resp.Header.Get("Location"), "", "")
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline(t))
	defer cancel()
	select {
	case <-enough:
	case <-ctx.Done():
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("timed out: %d frames", len(got))
	}
	pc.Close()
	wg.Wait()
	return answer, got[:frames]
}

// captures records the capture time of every video frame the hub
// publishes, by PTS; get returns a copy.
func captures(t *testing.T, h *media.Hub) (get func() map[time.Duration]time.Time) {
	c := h.Subscribe(media.ConsumerOptions{Name: "captures", QueueFrames: 1024})
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	byPTS := map[time.Duration]time.Time{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			f, _, err := c.Next(ctx)
			if err != nil {
				return
			}
			if f.Kind == media.Video {
				mu.Lock()
				byPTS[f.PTS] = f.Captured
				mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { cancel(); c.Close(); <-done })
	return func() map[time.Duration]time.Time {
		mu.Lock()
		defer mu.Unlock()
		return maps.Clone(byPTS)
	}
}

// TestAbsCaptureTimeIsTheFramesCaptureTime: a viewer whose offer names
// abs-capture-time and playout-delay gets them in the answer, and the
// first packet of every video frame carries the frame's Captured (read
// back by the RTP timestamp, which advances with the PTS) and a playout
// delay of zero. A viewer that does not offer them gets neither.
func TestAbsCaptureTimeIsTheFramesCaptureTime(t *testing.T) {
	ts := newTestServer(t, Options{})
	byPTS := captures(t, ts.hub)
	answer, frames := viewExtensions(t, ts, 50, absCaptureTimeURI, playoutDelayURI)
	for _, uri := range []string{absCaptureTimeURI, playoutDelayURI} {
		if !strings.Contains(answer, uri) {
			t.Errorf("the answer does not name %s", uri)
		}
	}
	captured := byPTS()
	// The first frame's capture time finds its PTS; every later frame's
	// PTS follows from its RTP timestamp (90 kHz, 10 ms frames).
	var pts0 time.Duration
	found := false
	for pts, c := range captured {
		if absDuration(c.Sub(frames[0].captured)) < time.Microsecond {
			pts0, found = pts, true
		}
	}
	if !found {
		t.Fatalf("the first frame's abs-capture-time %v is no published frame's Captured", frames[0].captured)
	}
	for i, f := range frames {
		if f.captured.IsZero() {
			t.Fatalf("frame %d has no abs-capture-time", i)
		}
		if !f.hasPlayout || f.playout.MinDelay != 0 || f.playout.MaxDelay != 0 {
			t.Fatalf("frame %d playout-delay %+v", i, f.playout)
		}
		pts := pts0 + time.Duration(f.ts-frames[0].ts)*time.Second/90000
		want, ok := captured[pts]
		if !ok {
			t.Fatalf("frame %d: no frame was published at PTS %v", i, pts)
		}
		if d := f.captured.Sub(want); absDuration(d) > time.Microsecond {
			t.Fatalf("frame %d (PTS %v): abs-capture-time %v, captured %v", i, pts, f.captured, want)
		}
	}

	if answer, _ := viewExtensions(t, ts, 5); strings.Contains(answer, absCaptureTimeURI) || strings.Contains(answer, playoutDelayURI) {
		t.Errorf("an offer without the extensions got them in the answer:\n%s", answer)
	}
}

func absDuration(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// loopbackPeer is a viewer's peer connection with media engine m, on
// IPv4 loopback without mDNS candidates, closed when the test ends.
func loopbackPeer(t *testing.T, m *webrtc.MediaEngine) *webrtc.PeerConnection {
	t.Helper()
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc
}
