package device

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/camd-project/camd/board/sim"
	"github.com/camd-project/camd/device/api"
	"github.com/camd-project/camd/device/calls"
	"github.com/camd-project/camd/device/events"
	"github.com/camd-project/camd/internal/testenv"
	"github.com/camd-project/camd/media/encoder"
	"github.com/camd-project/camd/media/g711"
	"github.com/camd-project/camd/media/h264/h264test"
	"github.com/camd-project/camd/media/tonetest"
	"github.com/camd-project/camd/media/whep"
	"github.com/camd-project/camd/storage/eventlog"
)

// phone is a pion peer that answers a call as a phone app does: audio
// both ways (it talks a 1 kHz tone in PCMU or Opus), video received.
type phone struct {
	mime      string
	pc        *webrtc.PeerConnection
	talk      *webrtc.TrackLocalStaticSample
	connected chan struct{}
	heard     atomic.Uint64 // audio packets received from the camera
	video     atomic.Uint64
	// heardMime is the codec of the camera's audio; onAudio, if set
	// before the answer, gets each of its packets.
	heardMime atomic.Value
	onAudio   func(*rtp.Packet)
	location  string
	stop      chan struct{}
	wg        sync.WaitGroup
}

func newPhone(t testing.TB) *phone { return newPhoneTalking(t, webrtc.MimeTypePCMU) }

// newPhoneTalking is a phone that talks in mime (PCMU or Opus).
func newPhoneTalking(t testing.TB, mime string) *phone {
	t.Helper()
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	return newPhoneOn(t, mime, m)
}

// newPhoneWithoutOpus is a phone that knows only PCMU for audio (and
// H.264 for video), as a SIP-minded app or an old phone.
func newPhoneWithoutOpus(t testing.TB) *phone {
	t.Helper()
	m := &webrtc.MediaEngine{}
	for _, c := range []struct {
		p webrtc.RTPCodecParameters
		k webrtc.RTPCodecType
	}{
		{webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000, SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}, PayloadType: 102}, webrtc.RTPCodecTypeVideo},
		{webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000}, PayloadType: 0}, webrtc.RTPCodecTypeAudio},
	} {
		if err := m.RegisterCodec(c.p, c.k); err != nil {
			t.Fatal(err)
		}
	}
	return newPhoneOn(t, webrtc.MimeTypePCMU, m)
}

// newPhoneOn is a phone talking in mime with the codecs of m; tweaks
// change its settings.
func newPhoneOn(t testing.TB, mime string, m *webrtc.MediaEngine, tweaks ...func(*webrtc.SettingEngine)) *phone {
	t.Helper()
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	for _, tweak := range tweaks {
		tweak(&se)
	}
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	p := &phone{mime: mime, pc: pc, connected: make(chan struct{}), stop: make(chan struct{})}
	t.Cleanup(p.close)
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	capability := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000}
	if mime == webrtc.MimeTypeOpus {
		capability = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}
	}
	p.talk, _ = webrtc.NewTrackLocalStaticSample(capability, "audio", "phone")
	if _, err := pc.AddTransceiverFromTrack(p.talk, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendrecv}); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			once.Do(func() { close(p.connected) })
		}
	})
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		n := &p.video
		audio := tr.Kind() == webrtc.RTPCodecTypeAudio
		if audio {
			n = &p.heard
			p.heardMime.Store(tr.Codec().MimeType)
		}
		for {
			pkt, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			if audio && p.onAudio != nil {
				p.onAudio(pkt)
			}
			n.Add(1)
		}
	})
	return p
}

// offer is the phone's offer, candidates gathered.
func (p *phone) offer(t testing.TB) string {
	t.Helper()
	o, err := p.pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	g := webrtc.GatheringCompletePromise(p.pc)
	p.pc.SetLocalDescription(o)
	<-g
	return p.pc.LocalDescription().SDP
}

// answer posts the phone's offer to the call and applies the answer; it
// returns the status and body.
func (p *phone) answer(t testing.TB, d *Daemon, id, token, offer string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", "https://"+d.Addr().String()+"/api/v1/calls/"+id+"/answer", strings.NewReader(offer))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/sdp")
	resp, err := testClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusCreated {
		p.location = resp.Header.Get("Location")
		if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(b)}); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode, string(b)
}

// talkTone sends a 1 kHz tone in 20 ms packets (PCMU, or Opus in cgo
// builds), paced in real time as a phone's microphone is, until stop.
func (p *phone) talkTone(t testing.TB) {
	var enc g711.Encoder
	encode := func(pcm []int16) []byte { return enc.Encode(pcm) }
	if p.mime == webrtc.MimeTypeOpus {
		o, err := encoder.NewOpus(1, 32000)
		if err != nil {
			t.Skip("no Opus encoder in this build:", err)
		}
		t.Cleanup(func() { o.Close() })
		encode = func(pcm []int16) []byte { b, _ := o.Encode(pcm); return b }
	}
	p.wg.Go(func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			pcm := make([]int16, 960)
			for j := range pcm {
				pcm[j] = int16(12000 * math.Sin(2*math.Pi*1000*float64(i*960+j)/48000))
			}
			if err := p.talk.WriteSample(media.Sample{Data: encode(pcm), Duration: 20 * time.Millisecond}); err != nil {
				return
			}
			select {
			case <-p.stop:
				return
			case <-tick.C:
			}
		}
	})
}

func (p *phone) close() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	p.pc.Close()
	p.wg.Wait()
}

// ring starts a call as the owner and returns it.
func ring(t *testing.T, d *Daemon, ownerToken string) calls.Call {
	t.Helper()
	code, b := call(t, d, "POST", "/api/v1/calls", ownerToken, nil)
	var c calls.Call
	if code != http.StatusCreated || json.Unmarshal(b, &c) != nil || c.State != calls.Ringing {
		t.Fatalf("ring: %d %s", code, b)
	}
	return c
}

// callEvents subscribes to the call events from now on.
func callEvents(t *testing.T, d *Daemon, ownerToken string) *events.Subscription {
	t.Helper()
	sub, err := d.events.bus.Subscribe(eventsView{d.events.log, d.recording.snaps}, events.Subscriber{User: userOf(t, d, ownerToken), Owner: true, Kinds: []string{"call.*", "doorbell.*"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sub.Close)
	return sub
}

// nextEvent waits for the subscription's next event.
func nextEvent(t *testing.T, sub *events.Subscription) eventlog.Event {
	t.Helper()
	ctx, cancel := testenv.Context(t, context.Background())
	defer cancel()
	m, err := sub.Next(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var e eventlog.Event
	json.Unmarshal(m.JSON, &e)
	return e
}

func syntheticSource(c *Config) {
	c.Source = "synthetic"
	c.Video.Width, c.Video.Height, c.Video.FPS = 160, 120, 10
}

// TestCallPhoneTalksToSpeaker: a phone answers a call with a pion peer;
// it receives the camera's video and microphone, and its 1 kHz tone
// comes out of the simulated speaker (Goertzel, not a byte compare); a
// second phone is told the call was answered elsewhere; DELETE on the
// answer's Location hangs up; every transition is an event.
func TestCallPhoneTalksToSpeaker(t *testing.T) {
	for _, mime := range []string{webrtc.MimeTypePCMU, webrtc.MimeTypeOpus} {
		t.Run(mime, func(t *testing.T) { testCallPhoneTalks(t, mime) })
	}
}

func testCallPhoneTalks(t *testing.T, mime string) {
	d := running(t, syntheticSource)
	ownerToken := owner(t, d)
	viewerToken := viewer(t, d, ownerToken)
	sub := callEvents(t, d, ownerToken)
	c := ring(t, d, ownerToken)
	if e := nextEvent(t, sub); e.Kind != events.CallRinging || e.Data["call"] != c.ID || e.Data["source"] != "api" {
		t.Fatalf("first event %+v", e)
	}

	p := newPhoneTalking(t, mime)
	code, body := p.answer(t, d, c.ID, viewerToken, p.offer(t))
	if code != http.StatusCreated || !strings.HasPrefix(p.location, "/api/v1/calls/"+c.ID+"/answer/") {
		t.Fatalf("answer: %d %s (Location %q)", code, body, p.location)
	}
	// The ring-back tone played while it rang, and stopped with the
	// answer: from now on the speaker is the phone's.
	d.board.sim.Speaker.Reset()
	if e := nextEvent(t, sub); e.Kind != events.CallAnswered || e.Data["user"] != userOf(t, d, viewerToken) {
		t.Fatalf("answered event %+v", e)
	}
	// The owner's phone comes second.
	p2 := newPhone(t)
	if code, body := p2.answer(t, d, c.ID, ownerToken, p2.offer(t)); code != http.StatusConflict || !strings.Contains(body, "answered elsewhere") {
		t.Fatalf("second answer: %d %s", code, body)
	}

	select {
	case <-p.connected:
	case <-time.After(10 * time.Second):
		t.Fatal("the phone did not connect")
	}
	p.talkTone(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	spk := d.board.sim.Speaker
	if err := spk.Wait(ctx, 48000); err != nil { // a second of the phone's voice
		t.Fatalf("the speaker played nothing: %v", err)
	}
	pcm, _ := spk.Played()
	if g := tonetest.Share(pcm[4800:48000], 1000); g < 0.8 {
		t.Fatalf("the speaker's sound holds %.2f of its power at 1 kHz", g)
	}
	// The camera's microphone (the synthetic tone) and picture reach
	// the phone.
	for p.heard.Load() < 10 || p.video.Load() < 3 {
		select {
		case <-ctx.Done():
			t.Fatalf("the phone got %d audio and %d video packets", p.heard.Load(), p.video.Load())
		case <-time.After(20 * time.Millisecond): // polls the counters only
		}
	}

	// Another user cannot hang up; the answerer can.
	if code, _ := call(t, d, "DELETE", p.location, ownerToken, nil); code != http.StatusConflict {
		t.Fatalf("another user's hangup: %d", code)
	}
	if code, _ := call(t, d, "DELETE", p.location, viewerToken, nil); code != http.StatusOK {
		t.Fatalf("hangup: %d", code)
	}
	if e := nextEvent(t, sub); e.Kind != events.CallEnded || e.Data["reason"] != calls.ReasonHungUp {
		t.Fatalf("ended event %+v", e)
	}
	code, b := call(t, d, "GET", "/api/v1/calls", viewerToken, nil)
	var list api.CallList
	json.Unmarshal(b, &list)
	if code != http.StatusOK || list.Current != nil || len(list.History) != 1 || list.History[0].State != calls.Ended {
		t.Fatalf("calls: %d %s", code, b)
	}
	// Answering a call that is over.
	p3 := newPhone(t)
	if code, _ := p3.answer(t, d, c.ID, viewerToken, p3.offer(t)); code != http.StatusGone {
		t.Fatalf("answer to an ended call: %d", code)
	}
}

// TestCallRoutesRefuse: who may ring, answer and decline, and bad
// offers, which leave the call ringing.
func TestCallRoutesRefuse(t *testing.T) {
	d := running(t)
	ownerToken := owner(t, d)
	viewerToken := viewer(t, d, ownerToken)
	key := streamKey(t, d, ownerToken, "nvr")
	if code, _ := call(t, d, "POST", "/api/v1/calls", viewerToken, nil); code != http.StatusForbidden {
		t.Fatalf("a viewer rang: %d", code)
	}
	c := ring(t, d, ownerToken)
	if code, _ := call(t, d, "POST", "/api/v1/calls", ownerToken, nil); code != http.StatusConflict {
		t.Fatalf("a second call: %d", code)
	}
	offer := newPhone(t).offer(t)
	post := func(token, ct, body string) int {
		req, _ := http.NewRequest("POST", "https://"+d.Addr().String()+"/api/v1/calls/"+c.ID+"/answer", strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		req.Header.Set("Content-Type", ct)
		// A refusal comes before the body is read (credential, type):
		// the offer waits for 100 Continue, or the client may still be
		// writing it when camd closes the connection.
		req.Header.Set("Expect", "100-continue")
		client := testClient()
		client.Transport.(*http.Transport).ExpectContinueTimeout = 5 * time.Second
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	noAudio := offer[:strings.Index(offer, "m=audio")]
	recvOnly := strings.ReplaceAll(offer, "a=sendrecv", "a=recvonly")
	for _, tc := range []struct {
		name, token, ct, body string
		want                  int
	}{
		{"no credential", "", "application/sdp", offer, http.StatusUnauthorized},
		{"a stream key", key.Token, "application/sdp", offer, http.StatusForbidden},
		{"not SDP", viewerToken, "text/plain", offer, http.StatusUnsupportedMediaType},
		{"malformed", viewerToken, "application/sdp", "v=0\r\nnonsense", http.StatusBadRequest},
		{"no audio", viewerToken, "application/sdp", noAudio, http.StatusUnprocessableEntity},
		{"audio not sent", viewerToken, "application/sdp", recvOnly, http.StatusUnprocessableEntity},
	} {
		if got := post(tc.token, tc.ct, tc.body); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
	if cur, ok := d.calls.m.Current(); !ok || cur.State != calls.Ringing {
		t.Fatalf("after bad offers: %+v %v, want still ringing", cur, ok)
	}
	if code, _ := call(t, d, "POST", "/api/v1/calls/nope/answer", viewerToken, nil); code != http.StatusUnsupportedMediaType && code != http.StatusNotFound {
		t.Fatalf("unknown call: %d", code)
	}
	if code, _ := call(t, d, "POST", "/api/v1/calls/nope/decline", viewerToken, api.Decline{}); code != http.StatusNotFound {
		t.Fatalf("decline of an unknown call: %d", code)
	}
	if code, _ := call(t, d, "POST", "/api/v1/calls/"+c.ID+"/decline", viewerToken, api.Decline{Reason: "bored"}); code != http.StatusUnprocessableEntity {
		t.Fatalf("a bad reason: %d", code)
	}
	if code, _ := call(t, d, "POST", "/api/v1/calls/"+c.ID+"/decline", key.Token, api.Decline{}); code != http.StatusForbidden {
		t.Fatalf("a stream key declined: %d", code)
	}
	// A revoked viewer can do nothing more.
	if code, _ := call(t, d, "DELETE", "/api/v1/users/"+userOf(t, d, viewerToken), ownerToken, nil); code != http.StatusNoContent {
		t.Fatal("revoke")
	}
	if got := post(viewerToken, "application/sdp", offer); got != http.StatusUnauthorized {
		t.Fatalf("a revoked user answered: %d", got)
	}
	// The owner, the one phone left, declines busy.
	code, b := call(t, d, "POST", "/api/v1/calls/"+c.ID+"/decline", ownerToken, api.Decline{Reason: "busy"})
	if code != http.StatusOK || !bytes.Contains(b, []byte(`"busy"`)) {
		t.Fatalf("busy: %d %s", code, b)
	}
}

// TestDoorbellRings: the simulated board's doorbell rings a call; a
// press during it is ignored; a revoked user's answered call ends.
func TestDoorbellRingsAndRevokeEndsCall(t *testing.T) {
	d := running(t)
	ownerToken := owner(t, d)
	viewerToken := viewer(t, d, ownerToken)
	sub := callEvents(t, d, ownerToken)
	d.board.sim.Press(sim.Doorbell) // held until it rang: longer than the debounce
	pressed := nextEvent(t, sub)
	ringing := nextEvent(t, sub)
	d.board.sim.Release(sim.Doorbell)
	if pressed.Kind != events.DoorbellPressed || ringing.Kind != events.CallRinging || ringing.Data["source"] != "doorbell" || pressed.Data["call"] != ringing.Data["call"] {
		t.Fatalf("events %+v, %+v", pressed, ringing)
	}
	id := ringing.Data["call"]
	// A press during the call rings nothing (logged): held until the
	// call is answered, which is the next event.
	d.board.sim.Press(sim.Doorbell)
	p := newPhone(t)
	if code, body := p.answer(t, d, id, viewerToken, p.offer(t)); code != http.StatusCreated {
		t.Fatalf("answer: %d %s", code, body)
	}
	if e := nextEvent(t, sub); e.Kind != events.CallAnswered {
		t.Fatalf("%+v, want the answer (the second press rang nothing)", e)
	}
	d.board.sim.Release(sim.Doorbell)
	if code, _ := call(t, d, "DELETE", "/api/v1/users/"+userOf(t, d, viewerToken), ownerToken, nil); code != http.StatusNoContent {
		t.Fatal("revoke")
	}
	if e := nextEvent(t, sub); e.Kind != events.CallEnded || e.Data["reason"] != "access ended" {
		t.Fatalf("%+v, want the call ended by the revocation", e)
	}
}

// TestVanishedPhoneEndsCall: the answering phone's network goes away
// (its UDP socket closed: no DELETE, no DTLS close): ICE consent fails
// and the call ends as "connection failed" within live.ice_timeout of
// the phone's last packet (and ICE's next check), and the camera can be
// called again.
func TestVanishedPhoneEndsCall(t *testing.T) {
	const iceTimeout = 8 * time.Second
	d := running(t, func(c *Config) { c.Live.ICETimeout = iceTimeout })
	ownerToken := owner(t, d)
	sub := callEvents(t, d, ownerToken)
	c := ring(t, d, ownerToken)
	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	p := newPhoneOn(t, webrtc.MimeTypePCMU, m, func(se *webrtc.SettingEngine) {
		se.SetICEUDPMux(webrtc.NewICEUDPMux(nil, udp))
	})
	if code, body := p.answer(t, d, c.ID, ownerToken, p.offer(t)); code != http.StatusCreated {
		t.Fatalf("answer: %d %s", code, body)
	}
	select {
	case <-p.connected:
	case <-t.Context().Done():
		t.Fatal("the phone did not connect")
	}
	udp.Close() // the phone vanishes
	gone := time.Now()
	for {
		msg, err := sub.Next(t.Context(), nil)
		if err != nil {
			t.Fatal(err)
		}
		var e eventlog.Event
		json.Unmarshal(msg.JSON, &e)
		if e.Kind != events.CallEnded {
			continue
		}
		// Judged on the event's own time, not on how soon a starved
		// test read it: failed after ice_timeout without a packet, found
		// at ICE's next check (every 2 s), with a second for the
		// camera's bookkeeping: 11 s here (pion used to fail it at 1.5 ×
		// ice_timeout: 12–14 s).
		took := e.Time.Sub(gone)
		t.Logf("the call ended %v after the phone vanished: %v", took.Round(time.Millisecond), e.Data)
		if e.Data["reason"] != calls.ReasonFailed || e.Data["call"] != c.ID {
			t.Fatalf("%+v, want call %s ended as %q", e, c.ID, calls.ReasonFailed)
		}
		if took > iceTimeout+3*time.Second {
			t.Errorf("the call ended %v after the phone vanished, want within ice_timeout (%v)", took, iceTimeout)
		}
		break
	}
	ring(t, d, ownerToken)
}

// TestMissedCallKeepsSnapshotAndClip: with recording off, a call nobody
// answers is missed after calls.ring_timeout; its event points to a
// snapshot from the press and to a clip from 2 s before it, which was
// recorded anyway and exports as an MP4 that ffprobe decodes.
func TestMissedCallKeepsSnapshotAndClip(t *testing.T) {
	h264test.NeedFFmpeg(t)
	d := running(t, syntheticSource, func(c *Config) { c.Calls.RingTimeout = 5 * time.Second })
	ownerToken := owner(t, d)
	if code, b := patchSettings(t, d, ownerToken, "application/json", `{"recording_mode": "off"}`); code != http.StatusOK {
		t.Fatalf("recording off: %d %v", code, b)
	}
	// The pre-roll fills while nothing rings.
	time.Sleep(3 * time.Second) // lets the camera run: what the clip's 2 s before the press show
	sub := callEvents(t, d, ownerToken)
	c := ring(t, d, ownerToken)
	nextEvent(t, sub) // ringing
	missed := nextEvent(t, sub)
	if missed.Kind != events.CallMissed || missed.Data["call"] != c.ID || missed.Data["reason"] != calls.ReasonTimeout {
		t.Fatalf("missed event %+v", missed)
	}
	if missed.Snapshot == "" || missed.Clip == nil {
		t.Fatalf("the missed call keeps no snapshot or clip: %+v", missed)
	}
	if want := c.Started.Add(-2 * time.Second); !missed.Clip.From.Equal(want) || !missed.Clip.To.Equal(c.Started.Add(8*time.Second)) {
		t.Fatalf("clip %+v, want 2 s before to 8 s after %v", missed.Clip, c.Started)
	}
	// The history points to them too.
	code, b := call(t, d, "GET", "/api/v1/calls", ownerToken, nil)
	var list api.CallList
	if json.Unmarshal(b, &list) != nil || code != http.StatusOK || len(list.History) != 1 || list.History[0].Snapshot != missed.Snapshot ||
		list.History[0].Clip == nil || !list.History[0].Clip.From.Equal(missed.Clip.From) || list.History[0].State != calls.Missed {
		t.Fatalf("history of the missed call: %d %s", code, b)
	}
	resp := get(t, d, "/api/v1/snapshots/"+missed.Snapshot, ownerToken, nil)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/jpeg" {
		t.Fatalf("snapshot: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	path := "/api/v1/recordings/export?from=" + missed.Clip.From.Format(time.RFC3339Nano) + "&to=" + missed.Time.Format(time.RFC3339Nano)
	resp = get(t, d, path, ownerToken, nil)
	mp4, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "video/mp4" {
		t.Fatalf("clip export: %s, %d bytes", resp.Status, len(mp4))
	}
	if start, _ := time.Parse(time.RFC3339Nano, resp.Header.Get("X-Camd-Start")); start.After(c.Started.Add(-time.Second)) {
		t.Fatalf("the clip starts at %v, %v before the press", start, c.Started.Sub(start))
	}
	file := filepath.Join(t.TempDir(), "missed.mp4")
	os.WriteFile(file, mp4, 0o600)
	out, err := exec.Command("ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
		"-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", file).CombinedOutput()
	if n, _ := strconv.Atoi(strings.TrimSpace(string(out))); err != nil || n < 20 {
		t.Fatalf("ffprobe: %v: %s", err, out)
	}
}

// TestCallAnsweredByWHEPClient: camctl's client (whep.View with Talk)
// answers a call: its tone comes out of the speaker, the camera's audio
// and picture reach it, and it hangs up (DELETE) when it is done.
func TestCallAnsweredByWHEPClient(t *testing.T) {
	d := running(t, syntheticSource)
	ownerToken := owner(t, d)
	c := ring(t, d, ownerToken)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	talked := 0
	type result struct {
		st  whep.ViewStats
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := whep.View(ctx, "https://"+d.Addr().String()+"/api/v1/calls/"+c.ID+"/answer", whep.ViewOptions{
			HTTPClient: testClient(), Header: http.Header{"Authorization": {"Bearer " + ownerToken}},
			Talk: func(pcm []int16) {
				for i := range pcm {
					pcm[i] = int16(12000 * math.Sin(2*math.Pi*1000*float64(talked+i)/48000))
				}
				talked += len(pcm)
			},
		})
		done <- result{st, err}
	}()
	spk := d.board.sim.Speaker
	// The ring-back tone is done once the call is answered.
	for cur, _ := d.calls.m.Current(); cur.State != calls.Answered; cur, _ = d.calls.m.Current() {
		select {
		case r := <-done:
			t.Fatalf("the client ended before it answered: %v", r.err)
		case <-time.After(10 * time.Millisecond): // polls the call's state only
		}
	}
	spk.Reset()
	if err := spk.Wait(ctx, 48000); err != nil {
		t.Fatal("the speaker played nothing of the client's voice")
	}
	pcm, _ := spk.Played()
	if g := tonetest.Share(pcm[4800:48000], 1000); g < 0.8 {
		t.Fatalf("the speaker's sound holds %.2f of its power at 1 kHz", g)
	}
	cancel()
	r := <-done
	if r.err != nil || r.st.AudioPackets == 0 || r.st.FramesReceived == 0 {
		t.Fatalf("client: %+v %v", r.st, r.err)
	}
	// It hung up as it left.
	got, err := d.calls.m.Get(c.ID)
	if err != nil || got.State != calls.Ended {
		t.Fatalf("after the client left: %+v %v", got, err)
	}
}

// TestParallelAnswersOneWins: many answers at once over HTTPS: exactly
// one 201, the others 409 answered elsewhere.
func TestParallelAnswersOneWins(t *testing.T) {
	d := running(t)
	ownerToken := owner(t, d)
	c := ring(t, d, ownerToken)
	p := newPhone(t)
	offer := p.offer(t)
	const n = 30
	codes := make(chan int, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			req, _ := http.NewRequest("POST", "https://"+d.Addr().String()+"/api/v1/calls/"+c.ID+"/answer", strings.NewReader(offer))
			req.Header.Set("Authorization", "Bearer "+ownerToken)
			req.Header.Set("Content-Type", "application/sdp")
			resp, err := testClient().Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		})
	}
	wg.Wait()
	close(codes)
	count := map[int]int{}
	for c := range codes {
		count[c]++
	}
	if count[http.StatusCreated] != 1 || count[http.StatusConflict] != n-1 {
		t.Fatalf("answers: %v, want one 201 and %d 409", count, n-1)
	}
}

// TestAnswerOverViewerLimitLeavesCallRinging: a phone the viewer limits
// refuse (here the one slot, kept for an owner) gets 503 before it
// claims the call, which rings on for the owner.
func TestAnswerOverViewerLimitLeavesCallRinging(t *testing.T) {
	d := running(t, func(c *Config) { c.Live.MaxViewers, c.Live.MaxViewersPerUser = 1, 1 })
	ownerToken := owner(t, d)
	viewerToken := viewer(t, d, ownerToken)
	c := ring(t, d, ownerToken)
	p := newPhone(t)
	if code, body := p.answer(t, d, c.ID, viewerToken, p.offer(t)); code != http.StatusServiceUnavailable {
		t.Fatalf("a viewer over the limit: %d %s", code, body)
	}
	if cur, ok := d.calls.m.Current(); !ok || cur.State != calls.Ringing {
		t.Fatalf("after the refusal: %+v, want ringing", cur)
	}
	p2 := newPhone(t)
	if code, body := p2.answer(t, d, c.ID, ownerToken, p2.offer(t)); code != http.StatusCreated {
		t.Fatalf("the owner: %d %s", code, body)
	}
}

// TestHangupByCall: DELETE /api/v1/calls/{call} (camctl call hangup, from
// a process that does not hold the answer's session) ends the call of the
// user who answered it, and with it the phone's WebRTC session; nobody
// else may: no credential 401, a stream key 403, another viewer and the
// owner 409, a revoked user 401; a call that is over 410, an unknown one
// 404.
func TestHangupByCall(t *testing.T) {
	d := running(t, syntheticSource)
	ownerToken := owner(t, d)
	viewerToken := viewer(t, d, ownerToken)
	otherToken := viewer(t, d, ownerToken)
	key := streamKey(t, d, ownerToken, "nvr")
	sub := callEvents(t, d, ownerToken)
	c := ring(t, d, ownerToken)
	nextEvent(t, sub) // ringing
	p := newPhone(t)
	closed := make(chan struct{})
	var once sync.Once
	p.pc.OnICEConnectionStateChange(func(s webrtc.ICEConnectionState) {
		if s == webrtc.ICEConnectionStateClosed || s == webrtc.ICEConnectionStateDisconnected || s == webrtc.ICEConnectionStateFailed {
			once.Do(func() { close(closed) })
		}
	})
	if code, body := p.answer(t, d, c.ID, viewerToken, p.offer(t)); code != http.StatusCreated {
		t.Fatalf("answer: %d %s", code, body)
	}
	nextEvent(t, sub) // answered
	select {
	case <-p.connected:
	case <-time.After(10 * time.Second):
		t.Fatal("the phone did not connect")
	}
	path := "/api/v1/calls/" + c.ID
	for _, tc := range []struct {
		name, token string
		want        int
	}{
		{"no credential", "", http.StatusUnauthorized},
		{"a stream key", key.Token, http.StatusForbidden},
		{"another viewer", otherToken, http.StatusConflict},
		{"the owner, who did not answer", ownerToken, http.StatusConflict},
		{"an unknown call", viewerToken, http.StatusNotFound},
	} {
		pth := path
		if tc.name == "an unknown call" {
			pth = "/api/v1/calls/nope"
		}
		if code, _ := call(t, d, "DELETE", pth, tc.token, nil); code != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, code, tc.want)
		}
	}
	if code, _ := call(t, d, "DELETE", "/api/v1/users/"+userOf(t, d, otherToken), ownerToken, nil); code != http.StatusNoContent {
		t.Fatal("revoke")
	}
	if code, _ := call(t, d, "DELETE", path, otherToken, nil); code != http.StatusUnauthorized {
		t.Errorf("a revoked user: %d, want 401", code)
	}
	if cur, ok := d.calls.m.Current(); !ok || cur.State != calls.Answered {
		t.Fatalf("after the refusals: %+v %v, want still answered", cur, ok)
	}

	code, b := call(t, d, "DELETE", path, viewerToken, nil)
	var got calls.Call
	if code != http.StatusOK || json.Unmarshal(b, &got) != nil || got.State != calls.Ended {
		t.Fatalf("hangup: %d %s", code, b)
	}
	if e := nextEvent(t, sub); e.Kind != events.CallEnded || e.Data["reason"] != calls.ReasonHungUp || e.Data["user"] != userOf(t, d, viewerToken) {
		t.Fatalf("%+v, want hung up by the viewer", e)
	}
	// The session ended with the call: the phone's connection closes.
	select {
	case <-closed:
	case <-time.After(15 * time.Second):
		t.Fatal("the phone's connection outlived the call")
	}
	if code, _ := call(t, d, "DELETE", path, viewerToken, nil); code != http.StatusGone {
		t.Errorf("a second hangup: %d, want 410", code)
	}
}

// TestCallHistorySurvivesRestart: GET /api/v1/calls's history is read
// from the event log, so it survives a restart: each call's transitions,
// who answered, how long, why it ended; pages by limit with a Link to the
// older ones; viewers read it, a stream key and a revoked user cannot.
func TestCallHistorySurvivesRestart(t *testing.T) {
	cfg := Defaults()
	cfg.Data = t.TempDir()
	cfg.Listen = "127.0.0.1:0"
	cfg.Source = "passthrough"
	cfg.Passthrough.FIFO = filepath.Join(cfg.Data, "no-writer.fifo")
	d, stop := runningAt(t, cfg)
	ownerToken := owner(t, d)
	viewerToken := viewer(t, d, ownerToken)
	revokedToken := viewer(t, d, ownerToken)
	key := streamKey(t, d, ownerToken, "nvr")
	ownerID, viewerID := userOf(t, d, ownerToken), userOf(t, d, viewerToken)

	// Answered and hung up (the manager's own requests: the media is
	// not what this test is about).
	a := ring(t, d, ownerToken)
	if _, err := d.calls.m.Answer(a.ID, ownerID); err != nil {
		t.Fatal(err)
	}
	if _, err := d.calls.m.Hangup(a.ID, ownerID, calls.ReasonHungUp); err != nil {
		t.Fatal(err)
	}
	// Busy.
	b := ring(t, d, ownerToken)
	if code, _ := call(t, d, "POST", "/api/v1/calls/"+b.ID+"/decline", viewerToken, api.Decline{Reason: "busy"}); code != http.StatusOK {
		t.Fatal("busy")
	}
	if code, _ := call(t, d, "DELETE", "/api/v1/users/"+userOf(t, d, revokedToken), ownerToken, nil); code != http.StatusNoContent {
		t.Fatal("revoke")
	}
	// Ringing as camd stops: missed.
	c := ring(t, d, ownerToken)
	stop()

	d, _ = runningAt(t, cfg)
	code, body := call(t, d, "GET", "/api/v1/calls", viewerToken, nil)
	var list api.CallList
	if code != http.StatusOK || json.Unmarshal(body, &list) != nil {
		t.Fatalf("calls: %d %s", code, body)
	}
	if list.Current != nil || len(list.History) != 3 {
		t.Fatalf("after the restart: %s, want three calls and none current", body)
	}
	steps := func(r api.CallRecord) (s []calls.State) {
		for _, st := range r.Transitions {
			s = append(s, st.State)
		}
		return s
	}
	gotC, gotB, gotA := list.History[0], list.History[1], list.History[2]
	if gotC.ID != c.ID || gotC.State != calls.Missed || gotC.Reason != calls.ReasonStopping || !slices.Equal(steps(gotC), []calls.State{calls.Ringing, calls.Missed}) {
		t.Errorf("the call ringing at the stop: %+v", gotC)
	}
	if gotB.ID != b.ID || gotB.State != calls.Busy || gotB.EndedBy != viewerID || gotB.Reason != calls.ReasonBusy {
		t.Errorf("the busy call: %+v", gotB)
	}
	if gotA.ID != a.ID || gotA.State != calls.Ended || gotA.AnsweredBy != ownerID || gotA.EndedBy != ownerID ||
		gotA.Reason != calls.ReasonHungUp || gotA.Source != "api" || gotA.By != ownerID || !gotA.Started.Equal(a.Started) ||
		gotA.Answered.IsZero() || gotA.Finished.Before(gotA.Answered) ||
		!slices.Equal(steps(gotA), []calls.State{calls.Ringing, calls.Answered, calls.Ended}) {
		t.Errorf("the answered call: %+v", gotA)
	}

	// Pages: the newest, then a Link to the older ones.
	resp := get(t, d, "/api/v1/calls?limit=2", viewerToken, nil)
	var page api.CallList
	json.NewDecoder(resp.Body).Decode(&page)
	resp.Body.Close()
	link := resp.Header.Get("Link")
	if len(page.History) != 2 || page.History[1].ID != b.ID || !strings.HasSuffix(link, `>; rel="next"`) {
		t.Fatalf("first page: %+v, Link %q", page.History, link)
	}
	resp = get(t, d, strings.TrimSuffix(strings.TrimPrefix(link, "<"), `>; rel="next"`), viewerToken, nil)
	page = api.CallList{}
	json.NewDecoder(resp.Body).Decode(&page)
	resp.Body.Close()
	if len(page.History) != 1 || page.History[0].ID != a.ID || resp.Header.Get("Link") != "" {
		t.Fatalf("next page: %+v, Link %q", page.History, resp.Header.Get("Link"))
	}
	for _, tc := range []struct {
		name, path, token string
		want              int
	}{
		{"no credential", "/api/v1/calls", "", http.StatusUnauthorized},
		{"a stream key", "/api/v1/calls", key.Token, http.StatusForbidden},
		{"a revoked user", "/api/v1/calls", revokedToken, http.StatusUnauthorized},
		{"a bad limit", "/api/v1/calls?limit=-1", viewerToken, http.StatusBadRequest},
		{"a bad time", "/api/v1/calls?from=yesterday", viewerToken, http.StatusBadRequest},
	} {
		if code, _ := call(t, d, "GET", tc.path, tc.token, nil); code != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, code, tc.want)
		}
	}
	code, body = call(t, d, "GET", "/api/v1/calls?from="+c.Started.Add(time.Nanosecond).Format(time.RFC3339Nano), viewerToken, nil)
	page = api.CallList{}
	if json.Unmarshal(body, &page) != nil || code != http.StatusOK || page.History == nil || len(page.History) != 0 {
		t.Errorf("calls after the last: %d %s", code, body)
	}
}

// TestCallPhoneWithoutOpusHearsG711: a phone that offers PCMU and no
// Opus answers: camd sends it the camera's microphone as G.711 µ-law (the
// synthetic 440 Hz tone, decoded and found by Goertzel), and plays the
// phone's PCMU on the speaker. Full duplex: the phone talks all along,
// and half duplex would turn the beep down meanwhile.
func TestCallPhoneWithoutOpusHearsG711(t *testing.T) {
	d := running(t, syntheticSource, func(c *Config) { c.Calls.Duplex = "full" })
	ownerToken := owner(t, d)
	c := ring(t, d, ownerToken)
	p := newPhoneWithoutOpus(t)
	var (
		mu  sync.Mutex
		dec g711.Decoder
		pcm []int16
	)
	enough := make(chan struct{})
	p.onAudio = func(pkt *rtp.Packet) {
		mu.Lock()
		defer mu.Unlock()
		if len(pcm) < 48000 {
			pcm = dec.Decode(pcm, pkt.Payload)
			if len(pcm) >= 48000 {
				close(enough)
			}
		}
	}
	offer := p.offer(t)
	if strings.Contains(strings.ToLower(offer), "opus") {
		t.Fatal("the phone offers Opus")
	}
	if code, body := p.answer(t, d, c.ID, ownerToken, offer); code != http.StatusCreated {
		t.Fatalf("answer: %d %s", code, body)
	}
	select {
	case <-p.connected:
	case <-time.After(10 * time.Second):
		t.Fatal("the phone did not connect")
	}
	p.talkTone(t)
	select {
	case <-enough:
	case <-time.After(10 * time.Second):
		t.Fatalf("the phone heard %d packets", p.heard.Load())
	}
	if m, _ := p.heardMime.Load().(string); !strings.EqualFold(m, webrtc.MimeTypePCMU) {
		t.Fatalf("the camera's audio came as %q", m)
	}
	// The loudest 50 ms is the middle of a beep: 440 Hz (880 Hz every
	// tenth second).
	mu.Lock()
	beep, rms := loudest(pcm, 2400)
	mu.Unlock()
	if g := max(tonetest.Share(beep, 440), tonetest.Share(beep, 880)); rms < 300 || g < 0.5 {
		t.Fatalf("the camera's beep at the phone: RMS %.0f, %.2f of its power at 440 or 880 Hz", rms, g)
	}
	// And the phone's voice reaches the speaker.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d.board.sim.Speaker.Reset()
	if err := d.board.sim.Speaker.Wait(ctx, 24000); err != nil {
		t.Fatalf("the speaker played nothing: %v", err)
	}
}

// TestCallAnsweredForG711Listener: camctl's client answering with
// ViewOptions.PCM (answer --listen OUT.wav) offers PCMU alone and gets
// the camera's microphone as G.711, decoded: its beep at 440 Hz (880 Hz
// every tenth second).
func TestCallAnsweredForG711Listener(t *testing.T) {
	d := running(t, syntheticSource)
	ownerToken := owner(t, d)
	c := ring(t, d, ownerToken)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var heard []int16
	st, err := whep.View(ctx, "https://"+d.Addr().String()+"/api/v1/calls/"+c.ID+"/answer", whep.ViewOptions{
		HTTPClient: testClient(), Header: http.Header{"Authorization": {"Bearer " + ownerToken}},
		Talk: func([]int16) {},
		PCM: func(pcm []int16) {
			heard = append(heard, pcm...)
			if len(heard) >= 2*48000 {
				cancel()
			}
		},
	})
	if len(heard) < 2*48000 || st.FramesReceived == 0 {
		t.Fatalf("heard %d samples, %+v %v", len(heard), st, err)
	}
	beep, rms := loudest(heard, 2400)
	if g := max(tonetest.Share(beep, 440), tonetest.Share(beep, 880)); rms < 300 || g < 0.5 {
		t.Fatalf("the camera's beep: RMS %.0f, %.2f of its power at 440 or 880 Hz", rms, g)
	}
	if got, _ := d.calls.m.Get(c.ID); got.State != calls.Ended || got.Reason != calls.ReasonHungUp {
		t.Fatalf("after the client left: %+v", got)
	}
}
