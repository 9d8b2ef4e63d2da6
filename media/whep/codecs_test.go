package whep

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/camd-project/camd/media"
)

func h264Format(pt uint8, fmtp string) webrtc.RTPCodecParameters {
	return webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
		SDPFmtpLine: fmtp}, PayloadType: webrtc.PayloadType(pt)}
}

func TestPickCodecFollowsStreamProfile(t *testing.T) {
	offered := []webrtc.RTPCodecParameters{
		h264Format(96, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f"),
		h264Format(97, "level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f"),
		h264Format(98, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"),
		h264Format(99, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f"),
		h264Format(100, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"),
		h264Format(101, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640c34"),
	}
	cases := []struct {
		name   string
		stream profile
		want   webrtc.PayloadType
	}{
		{"constrained baseline: the first of its profile with mode 1", constrainedBaseline, 98},
		{"baseline", profile{idc: 66}, 96},
		{"main", profile{idc: 77}, 99},
		{"high, another level", profile{idc: 100}, 101},
		{"a profile not offered: the first with mode 1", profile{idc: 244}, 96},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ok := pickCodec(offered, webrtc.RTPCodecTypeVideo, c.stream, false)
			if !ok || got.PayloadType != c.want {
				t.Fatalf("picked %d (%v), want %d", got.PayloadType, ok, c.want)
			}
		})
	}
}

func TestStreamProfileReadsTheKeyframesSPS(t *testing.T) {
	h := media.NewHub(media.HubOptions{})
	defer h.Close()
	if p := streamProfile(h); p != constrainedBaseline {
		t.Fatalf("before a keyframe: %+v", p)
	}
	h.Begin(media.SourceInfo{Name: "fake"})
	h.Publish(&media.Frame{Kind: media.Video, Key: true, Data: fakeAU(true, 0)})
	if p := streamProfile(h); p != constrainedBaseline {
		t.Fatalf("fake stream (SPS 42e01f): %+v", p)
	}
}

// TestAnswerNamesTheOnePayloadTypeSent offers H.264 under several payload
// types, as Chromium and go2rtc do: the answer must name exactly one per
// codec, and the packets must carry it (go2rtc binds to the first payload
// type of the answer).
func TestAnswerNamesTheOnePayloadTypeSent(t *testing.T) {
	ts := newTestServer(t, Options{})
	video := []webrtc.RTPCodecParameters{
		h264Format(96, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f"),
		h264Format(97, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"),
		h264Format(98, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f"),
		h264Format(99, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"),
	}
	audio := []webrtc.RTPCodecParameters{
		opus,
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10"}, PayloadType: 109},
	}
	m := &webrtc.MediaEngine{}
	for _, c := range video {
		if err := m.RegisterCodec(c, webrtc.RTPCodecTypeVideo); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range audio {
		if err := m.RegisterCodec(c, webrtc.RTPCodecTypeAudio); err != nil {
			t.Fatal(err)
		}
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
	}
	pts := make(chan [2]uint8, 2)
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		p, _, err := tr.ReadRTP()
		if err == nil {
			pts <- [2]uint8{uint8(tr.Codec().PayloadType), p.PayloadType}
		}
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
		t.Fatalf("POST: %d %s", resp.StatusCode, answer)
	}
	var d sdp.SessionDescription
	if err := d.UnmarshalString(answer); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"video": "97", "audio": "111"}
	for _, md := range d.MediaDescriptions {
		if got := strings.Join(md.MediaName.Formats, " "); got != want[md.MediaName.Media] {
			t.Errorf("answer's %s formats %q, want %q", md.MediaName.Media, got, want[md.MediaName.Media])
		}
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline(t))
	defer cancel()
	for range 2 {
		select {
		case got := <-pts:
			if got[0] != got[1] || (got[1] != 97 && got[1] != 111) {
				t.Errorf("track negotiated payload type %d, packets carry %d", got[0], got[1])
			}
		case <-ctx.Done():
			t.Fatal("no media")
		}
	}
}
