package whep

import (
	"context"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/camd-project/camd/media/g711"
)

// addTalk adds the phone's side of a call's audio: a sendrecv transceiver
// whose track sends PCMU.
func addTalk(pc *webrtc.PeerConnection) (*webrtc.TrackLocalStaticSample, error) {
	t, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: g711.Rate}, "audio", "camctl")
	if err != nil {
		return nil, err
	}
	if _, err := pc.AddTransceiverFromTrack(t, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendrecv}); err != nil {
		return nil, err
	}
	return t, nil
}

// sendTalk sends fill's 20 ms blocks of 48 kHz PCM as PCMU, paced in
// real time, until ctx ends.
func sendTalk(ctx context.Context, t *webrtc.TrackLocalStaticSample, fill func(pcm []int16)) {
	const block = 20 * time.Millisecond
	var enc g711.Encoder
	pcm := make([]int16, 960)
	tick := time.NewTicker(block)
	defer tick.Stop()
	for {
		clear(pcm)
		fill(pcm)
		if err := t.WriteSample(media.Sample{Data: enc.Encode(pcm), Duration: block}); err != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
