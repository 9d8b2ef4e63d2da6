package whep

import (
	"slices"
	"strings"
	"testing"

	"github.com/pion/sdp/v3"
)

// chromeOffer is the shape of a Chromium offer: many video formats with
// RTX, audio with RED, G.722, comfort noise and DTMF, a data channel.
const chromeOffer = "v=0\r\n" +
	"o=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n" +
	"s=-\r\n" +
	"t=0 0\r\n" +
	"a=group:BUNDLE 0 1 2\r\n" +
	"m=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103 45 127\r\n" +
	"c=IN IP4 0.0.0.0\r\n" +
	"a=ice-ufrag:abcd\r\n" +
	"a=mid:0\r\n" +
	"a=extmap:3 http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time\r\n" +
	"a=recvonly\r\n" +
	"a=rtcp-mux\r\n" +
	"a=rtpmap:96 VP8/90000\r\n" +
	"a=rtcp-fb:96 nack\r\n" +
	"a=rtpmap:97 rtx/90000\r\n" +
	"a=fmtp:97 apt=96\r\n" +
	"a=rtpmap:102 H264/90000\r\n" +
	"a=rtcp-fb:102 nack\r\n" +
	"a=rtcp-fb:102 nack pli\r\n" +
	"a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f\r\n" +
	"a=rtpmap:103 rtx/90000\r\n" +
	"a=fmtp:103 apt=102\r\n" +
	"a=rtpmap:45 AV1/90000\r\n" +
	"a=rtcp-fb:45 nack\r\n" +
	"a=rtpmap:127 h264/90000\r\n" +
	"a=fmtp:127 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42001f\r\n" +
	"a=rtcp-fb:* ccm fir\r\n" +
	"m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110\r\n" +
	"c=IN IP4 0.0.0.0\r\n" +
	"a=mid:1\r\n" +
	"a=recvonly\r\n" +
	"a=rtpmap:111 opus/48000/2\r\n" +
	"a=rtcp-fb:111 transport-cc\r\n" +
	"a=fmtp:111 minptime=10;useinbandfec=1\r\n" +
	"a=rtpmap:63 red/48000/2\r\n" +
	"a=fmtp:63 111/111\r\n" +
	"a=rtpmap:9 G722/8000\r\n" +
	"a=rtpmap:8 PCMA/8000\r\n" +
	"a=rtpmap:13 CN/8000\r\n" +
	"a=rtpmap:110 telephone-event/48000\r\n" +
	"m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n" +
	"c=IN IP4 0.0.0.0\r\n" +
	"a=mid:2\r\n" +
	"a=sctp-port:5000\r\n"

func TestTrimOffer(t *testing.T) {
	got := trimOffer(chromeOffer)
	var d sdp.SessionDescription
	if err := d.UnmarshalString(got); err != nil {
		t.Fatalf("trimmed offer does not parse: %v\n%s", err, got)
	}
	want := map[string][]string{"video": {"102", "127"}, "audio": {"111", "0", "8"}, "application": {"webrtc-datachannel"}}
	for _, m := range d.MediaDescriptions {
		if f := m.MediaName.Formats; !slices.Equal(f, want[m.MediaName.Media]) {
			t.Errorf("%s formats %v, want %v", m.MediaName.Media, f, want[m.MediaName.Media])
		}
	}
	for _, gone := range []string{"VP8", "rtx", "AV1", "apt=", "red/", "G722", "CN/", "telephone-event", ":96 ", ":45 ", ":63 "} {
		if strings.Contains(got, gone) {
			t.Errorf("trimmed offer still has %q:\n%s", gone, got)
		}
	}
	for _, kept := range []string{
		"a=group:BUNDLE 0 1 2\r\n", "a=ice-ufrag:abcd\r\n", "a=extmap:3 ", "a=rtcp-fb:102 nack pli\r\n",
		"a=fmtp:127 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42001f\r\n",
		"a=rtcp-fb:* ccm fir\r\n", "a=fmtp:111 minptime=10;useinbandfec=1\r\n", "a=rtpmap:8 PCMA/8000\r\n",
		"m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n", "a=sctp-port:5000\r\n",
	} {
		if !strings.Contains(got, kept) {
			t.Errorf("trimmed offer lost %q:\n%s", kept, got)
		}
	}
	if len(got) >= len(chromeOffer)*3/4 {
		t.Errorf("trimmed offer is %d bytes of %d", len(got), len(chromeOffer))
	}
}

// A section with nothing camd can use stays as it is: pion refuses or
// rejects it with the offer's own formats.
func TestTrimOfferLeavesUnusableSection(t *testing.T) {
	offer := "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n" +
		"m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\na=rtpmap:96 VP8/90000\r\n" +
		"m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:1\r\na=rtpmap:111 opus/48000/2\r\n"
	if got := trimOffer(offer); got != offer {
		t.Errorf("trimOffer changed an offer it cannot trim:\n%s", got)
	}
	if got := trimOffer("v=0\nm=video 9 RTP/AVP 96 102\na=rtpmap:96 VP8/90000\na=rtpmap:102 H264/90000\n"); got != "v=0\nm=video 9 RTP/AVP 102\na=rtpmap:102 H264/90000\n" {
		t.Errorf("LF-only offer trimmed to %q", got)
	}
}

// FuzzTrimOffer: whatever the offer, trimming never panics, never makes
// it longer, and an offer pion parses still parses after it.
func FuzzTrimOffer(f *testing.F) {
	f.Add(chromeOffer)
	f.Add("")
	f.Add("v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF\r\na=rtpmap:96\r\n")
	f.Add("m=video 9  UDP/TLS/RTP/SAVPF  96 96\r\na=rtpmap:96 VP8/90000\r\na=rtpmap:96 H264/90000\r\n")
	f.Fuzz(func(t *testing.T, offer string) {
		got := trimOffer(offer)
		if len(got) > len(offer) {
			t.Fatalf("trimmed offer is longer: %d > %d bytes", len(got), len(offer))
		}
		var in, out sdp.SessionDescription
		if in.UnmarshalString(offer) == nil {
			if err := out.UnmarshalString(got); err != nil {
				t.Fatalf("an offer pion parses no longer does once trimmed: %v\n%q", err, got)
			}
		}
	})
}
