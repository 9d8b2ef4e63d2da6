package whep

import (
	"bytes"
	"context"
	"net/http"
	"runtime/pprof"
	"strings"
	"testing"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// TestViewerRTCP: a viewer gets sender reports for the video it receives
// (camd's own, track.report), and its PLI reaches camd, from an encoding
// source (RTCP read by goroutines of camd's, through the interceptors,
// transport-wide congestion control negotiated) and from a passthrough
// one, where no goroutine of camd's reads it (SRTCP's read loop hands it
// over, engine.newAPI) and no per-packet feedback is asked for.
func TestViewerRTCP(t *testing.T) {
	for _, forces := range []bool{true, false} {
		t.Run(map[bool]string{true: "encoding", false: "passthrough"}[forces], func(t *testing.T) {
			info := fakeEncoder
			info.ForcesKeyframes = forces
			viewerRTCP(t, newTestServerOf(t, Options{}, info), forces)
		})
	}
}

func viewerRTCP(t *testing.T, ts *testServer, readers bool) {
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	pc := loopbackPeer(t, m)
	tr, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly})
	if err != nil {
		t.Fatal(err)
	}
	tracks := make(chan *webrtc.TrackRemote, 1)
	pc.OnTrack(func(tk *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		tracks <- tk
		for {
			if _, _, err := tk.ReadRTP(); err != nil {
				return
			}
		}
	})
	reports := make(chan *rtcp.SenderReport, 1)
	go func() {
		for {
			pkts, _, err := tr.Receiver().ReadRTCP()
			if err != nil {
				return
			}
			for _, p := range pkts {
				if sr, ok := p.(*rtcp.SenderReport); ok {
					select {
					case reports <- sr:
					default:
					}
				}
			}
		}
	}()
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	ctx, cancel := context.WithDeadline(context.Background(), deadline(t))
	defer cancel()
	_, answer, err := post(ctx, ViewOptions{HTTPClient: http.DefaultClient}, ts.url, pc.LocalDescription().SDP)
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatal(err)
	}
	// Transport-wide congestion control only where camd steers the
	// bitrate by it.
	if got := strings.Contains(answer, "transport-wide-cc"); got != readers {
		t.Fatalf("transport-wide-cc in the answer: %v, want %v", got, readers)
	}

	var video *webrtc.TrackRemote
	select {
	case video = <-tracks:
	case <-ctx.Done():
		t.Fatal("no video track")
	}
	select {
	case sr := <-reports:
		if sr.SSRC != uint32(video.SSRC()) || sr.PacketCount == 0 || sr.OctetCount == 0 || sr.NTPTime == 0 {
			t.Fatalf("sender report %+v for the video track %d", sr, video.SSRC())
		}
	case <-ctx.Done():
		t.Fatal("no sender report")
	}

	pli := []rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(video.SSRC())}}
	waitFor(t, "camd counted the viewer's PLI", func() bool {
		if err := pc.WriteRTCP(pli); err != nil {
			t.Fatal(err)
		}
		st := ts.srv.Stats()
		return len(st.Sessions) == 1 && st.Sessions[0].PLIs > 0
	})

	var stacks bytes.Buffer
	pprof.Lookup("goroutine").WriteTo(&stacks, 1)
	if got := bytes.Contains(stacks.Bytes(), []byte("whep.readRTCP")); got != readers {
		t.Fatalf("a goroutine of camd's reads the viewer's RTCP: %v, want %v", got, readers)
	}
}
