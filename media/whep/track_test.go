package whep

import (
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/camd-project/camd/media"
)

// recordingWriter is a webrtc.TrackLocalWriter that keeps what was sent.
type recordingWriter struct {
	mu      sync.Mutex
	headers []rtp.Header
	sizes   []int
	fail    error // returned by every write, when set
}

func (w *recordingWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fail != nil {
		return 0, w.fail
	}
	// A deep copy: the track may reuse the header's buffers.
	raw, err := h.Marshal()
	if err != nil {
		return 0, err
	}
	var c rtp.Header
	if _, err := c.Unmarshal(raw); err != nil {
		return 0, err
	}
	w.headers = append(w.headers, c)
	w.sizes = append(w.sizes, len(payload))
	return len(payload), nil
}

func (w *recordingWriter) Write(b []byte) (int, error) { return len(b), nil }

func boundTrack(kind webrtc.RTPCodecType) (*track, *recordingWriter) {
	t := newTrack(kind, constrainedBaseline)
	w := &recordingWriter{}
	t.w, t.ssrc, t.pt = w, 1234, 102
	return t, w
}

func TestTrackPacketizesOnceAndMarksLastPacket(t *testing.T) {
	tr, w := boundTrack(webrtc.RTPCodecTypeVideo)
	f := &media.Frame{Kind: media.Video, Key: true, Data: fakeAU(true, 0)}
	n, err := tr.writeFrame(f, false)
	if err != nil {
		t.Fatal(err)
	}
	if n < 3 {
		t.Fatalf("a 3 KB keyframe went out in %d packets", n)
	}
	for i, h := range w.headers {
		if h.SSRC != 1234 || h.PayloadType != 102 || h.Marker != (i == n-1) {
			t.Fatalf("packet %d header %+v", i, h)
		}
		if i > 0 && h.SequenceNumber != w.headers[i-1].SequenceNumber+1 {
			t.Fatalf("sequence gap at %d", i)
		}
		if w.sizes[i] > media.RTPPayloadSize {
			t.Fatalf("payload %d is %d bytes", i, w.sizes[i])
		}
	}
	// The payloads sent are the frame's (Frame.Payload).
	if n != f.Packets() {
		t.Fatalf("%d packets sent for a frame of %d payloads", n, f.Packets())
	}
	for i, sz := range w.sizes {
		if want := len(f.Payload(i, nil)); sz != want {
			t.Fatalf("payload %d: %d bytes sent, the frame's is %d", i, sz, want)
		}
	}
}

func TestTrackTimestamps(t *testing.T) {
	tr, _ := boundTrack(webrtc.RTPCodecTypeVideo)
	h := media.NewHub(media.HubOptions{})
	h.Begin(media.SourceInfo{})
	c := h.Subscribe(media.ConsumerOptions{})
	frame := func(pts time.Duration, key bool) *media.Frame {
		f := &media.Frame{Kind: media.Video, Key: key, PTS: pts, Data: fakeAU(key, 1)}
		h.Publish(f) // sets the epoch
		return f
	}
	ts := func(f *media.Frame, replay bool) uint32 { return tr.timestamp(f, replay) }

	a := ts(frame(time.Second, true), false)
	b := ts(frame(time.Second+40*time.Millisecond, false), false)
	if b-a != 3600 {
		t.Fatalf("40 ms apart became %d ticks, want 3600", b-a)
	}
	// Replayed frames are squeezed one tick apart.
	r1 := ts(frame(0, true), true)
	r2 := ts(frame(33*time.Millisecond, false), true)
	if r1 != b+1 || r2 != b+2 {
		t.Fatalf("replayed timestamps %d, %d after %d", r1, r2, b)
	}
	// A live frame after the replay keeps its real spacing to the last
	// replayed one.
	l := ts(frame(66*time.Millisecond, false), false)
	if l-r2 != 2970 {
		t.Fatalf("live after replay: +%d ticks, want 2970", l-r2)
	}
	// A restarted source (new epoch, PTS from zero) continues smoothly.
	h.Begin(media.SourceInfo{})
	e := ts(frame(0, true), false)
	if e-l != 2970 {
		t.Fatalf("after restart: +%d ticks, want one frame (2970)", e-l)
	}
	c.Close()
}

func TestTrackResendFromHistory(t *testing.T) {
	tr, w := boundTrack(webrtc.RTPCodecTypeVideo)
	var first uint16
	for i := range historySize/3 + 10 {
		if _, err := tr.writeFrame(&media.Frame{Kind: media.Video, Key: i == 0, PTS: time.Duration(i) * time.Millisecond, Data: fakeAU(i == 0, i)}, false); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = w.headers[0].SequenceNumber
		}
	}
	last := w.headers[len(w.headers)-1]
	sent := len(w.headers)
	if !tr.resend(last.SequenceNumber) {
		t.Fatal("the last packet was not in the history")
	}
	got := w.headers[len(w.headers)-1]
	if got.SequenceNumber != last.SequenceNumber || got.Timestamp != last.Timestamp || got.Marker != last.Marker {
		t.Fatalf("resent header %+v, want %+v", got, last)
	}
	if tr.resend(first) {
		t.Fatal("a packet older than the history was resent")
	}
	if tr.resend(last.SequenceNumber + 5) {
		t.Fatal("a packet never sent was resent")
	}
	if len(w.headers) != sent+1 {
		t.Fatalf("%d packets written, want %d", len(w.headers), sent+1)
	}
	if _, resent := tr.counters(); resent != 1 {
		t.Fatalf("resent counter %d", resent)
	}
	audio, _ := boundTrack(webrtc.RTPCodecTypeAudio)
	audio.writeFrame(&media.Frame{Kind: media.Audio, Data: []byte{1}}, false)
	if audio.resend(audio.seq) {
		t.Fatal("audio keeps no retransmit history")
	}
}

// A resent packet from the middle of an older frame is the one sent:
// same header, same size; the history holds at most historyFrames
// frames, however few packets they had.
func TestTrackHistoryFrames(t *testing.T) {
	tr, w := boundTrack(webrtc.RTPCodecTypeVideo)
	write := func(i int, data []byte) {
		t.Helper()
		if _, err := tr.writeFrame(&media.Frame{Kind: media.Video, Key: i == 0, PTS: time.Duration(i) * time.Millisecond, Data: data}, false); err != nil {
			t.Fatal(err)
		}
	}
	write(0, fakeAU(true, 0))
	mid := len(w.headers) / 2
	for i := 1; i < 5; i++ {
		write(i, fakeAU(false, i))
	}
	h, size := w.headers[mid], w.sizes[mid]
	if !tr.resend(h.SequenceNumber) {
		t.Fatal("a packet of the keyframe four frames back was not resent")
	}
	got := w.headers[len(w.headers)-1]
	if got.SequenceNumber != h.SequenceNumber || got.Timestamp != h.Timestamp || got.Marker != h.Marker || w.sizes[len(w.sizes)-1] != size {
		t.Fatalf("resent %+v (%d bytes), want %+v (%d bytes)", got, w.sizes[len(w.sizes)-1], h, size)
	}
	// One-packet frames: historyFrames of them fill the history long
	// before historySize packets.
	tiny := []byte{0, 0, 0, 1, 0x41, 0x9a, 1, 2, 3}
	write(5, tiny)
	oldest := w.headers[len(w.headers)-1].SequenceNumber
	for i := range historyFrames {
		write(6+i, tiny)
	}
	if tr.resend(oldest) {
		t.Fatalf("a packet %d frames back was resent", historyFrames+1)
	}
	if !tr.resend(oldest + 1) {
		t.Fatalf("a packet %d frames back was not resent", historyFrames)
	}
}

// The first packet of each video frame carries the frame's capture time
// (abs-capture-time) and a playout delay of zero when they were
// negotiated, and nothing when they were not; a resent first packet
// carries them again.
func TestTrackStampsCaptureTime(t *testing.T) {
	captured := time.Date(2026, 12, 7, 10, 0, 0, 123_456_789, time.UTC)
	f := &media.Frame{Kind: media.Video, Key: true, Captured: captured, Data: fakeAU(true, 0)}
	check := func(t *testing.T, h rtp.Header, want bool) {
		t.Helper()
		b := h.GetExtension(3)
		if !want {
			if b != nil || h.GetExtension(5) != nil {
				t.Fatalf("packet %d carries extensions %v", h.SequenceNumber, h.Extensions)
			}
			return
		}
		var ext rtp.AbsCaptureTimeExtension
		if err := ext.Unmarshal(b); err != nil {
			t.Fatalf("packet %d: abs-capture-time %x: %v", h.SequenceNumber, b, err)
		}
		if d := ext.CaptureTime().Sub(captured); d < -time.Microsecond || d > time.Microsecond {
			t.Fatalf("abs-capture-time says %v, the frame was captured at %v", ext.CaptureTime(), captured)
		}
		var pd rtp.PlayoutDelayExtension
		if err := pd.Unmarshal(h.GetExtension(5)); err != nil || pd.MinDelay != 0 || pd.MaxDelay != 0 {
			t.Fatalf("playout delay %x: %+v %v", h.GetExtension(5), pd, err)
		}
	}
	t.Run("negotiated", func(t *testing.T) {
		tr, w := boundTrack(webrtc.RTPCodecTypeVideo)
		tr.absCaptureID, tr.playoutID = 3, 5
		n, err := tr.writeFrame(f, false)
		if err != nil {
			t.Fatal(err)
		}
		for i, h := range w.headers {
			check(t, h, i == 0)
		}
		if !tr.resend(w.headers[0].SequenceNumber) || !tr.resend(w.headers[n-1].SequenceNumber) {
			t.Fatal("not resent")
		}
		check(t, w.headers[n], true)
		check(t, w.headers[n+1], false)
	})
	t.Run("not negotiated", func(t *testing.T) {
		tr, w := boundTrack(webrtc.RTPCodecTypeVideo)
		if _, err := tr.writeFrame(f, false); err != nil {
			t.Fatal(err)
		}
		for _, h := range w.headers {
			check(t, h, false)
		}
	})
}

func TestPickCodecPrefersProfile(t *testing.T) {
	cs := []webrtc.RTPCodecParameters{
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, SDPFmtpLine: "packetization-mode=0;profile-level-id=42e01f"}, PayloadType: 1},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, SDPFmtpLine: "packetization-mode=1;profile-level-id=64001f"}, PayloadType: 2},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, SDPFmtpLine: "packetization-mode=1;profile-level-id=42e01f"}, PayloadType: 3},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus}, PayloadType: 4},
	}
	if c, ok := pickCodec(cs, webrtc.RTPCodecTypeVideo, constrainedBaseline, false); !ok || c.PayloadType != 3 {
		t.Fatalf("picked %v", c.PayloadType)
	}
	if c, ok := pickCodec(cs[:2], webrtc.RTPCodecTypeVideo, constrainedBaseline, false); !ok || c.PayloadType != 2 {
		t.Fatalf("without the preferred profile picked %v", c.PayloadType)
	}
	if _, ok := pickCodec(cs[:1], webrtc.RTPCodecTypeVideo, profile{}, false); ok {
		t.Fatal("picked packetization-mode 0")
	}
	if c, ok := pickCodec(cs, webrtc.RTPCodecTypeAudio, profile{}, false); !ok || c.PayloadType != 4 {
		t.Fatal("no opus")
	}
	// A call's phone: Opus first, else PCMU.
	pcmu := webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000}, PayloadType: 0}
	if c, ok := pickCodec(append([]webrtc.RTPCodecParameters{pcmu}, cs...), webrtc.RTPCodecTypeAudio, profile{}, true); !ok || c.PayloadType != 4 {
		t.Fatalf("with Opus and PCMU picked %v", c.PayloadType)
	}
	if c, ok := pickCodec([]webrtc.RTPCodecParameters{pcmu}, webrtc.RTPCodecTypeAudio, profile{}, true); !ok || c.PayloadType != 0 {
		t.Fatalf("with PCMU only picked %v %v", c.PayloadType, ok)
	}
	if _, ok := pickCodec([]webrtc.RTPCodecParameters{pcmu}, webrtc.RTPCodecTypeAudio, profile{}, false); ok {
		t.Fatal("picked PCMU for live view")
	}
}
