package device

import (
	"context"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/camd-project/camd/board"
	"github.com/camd-project/camd/board/sim"
	"github.com/camd-project/camd/device/calls"
	"github.com/camd-project/camd/device/events"
	"github.com/camd-project/camd/internal/testenv"
	"github.com/camd-project/camd/media/tonetest"
)

// callScreen mirrors window.camdCall in the web page (device/web/call.js).
type callScreen struct {
	Events        string  `json:"events"`
	ID            string  `json:"id"`
	State         string  `json:"state"`
	Reason        string  `json:"reason"`
	FramesDecoded int     `json:"framesDecoded"`
	AudioReceived int     `json:"audioReceived"`
	AudioSent     int     `json:"audioSent"`
	AudioCodec    string  `json:"audioCodec"`
	AudioEnergy   float64 `json:"audioEnergy"`
	Ringing       bool    `json:"ringing"`
	Error         string  `json:"error"`
}

// toneWAV writes seconds of 48 kHz mono 16-bit WAV: 1 kHz bursts of
// 300 ms every 500 ms, as a voice comes and goes (a steady tone is what a
// phone's noise suppression learns to remove).
func toneWAV(t *testing.T, seconds int) string {
	t.Helper()
	n := seconds * board.SpeakerRate
	b := make([]byte, 44+2*n)
	copy(b, "RIFF")
	binary.LittleEndian.PutUint32(b[4:], uint32(36+2*n))
	copy(b[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(b[16:], 16)
	binary.LittleEndian.PutUint16(b[20:], 1) // PCM
	binary.LittleEndian.PutUint16(b[22:], 1) // mono
	binary.LittleEndian.PutUint32(b[24:], board.SpeakerRate)
	binary.LittleEndian.PutUint32(b[28:], 2*board.SpeakerRate)
	binary.LittleEndian.PutUint16(b[32:], 2)
	binary.LittleEndian.PutUint16(b[34:], 16)
	copy(b[36:], "data")
	binary.LittleEndian.PutUint32(b[40:], uint32(2*n))
	for i := range n {
		var v float64
		if i%(board.SpeakerRate/2) < board.SpeakerRate*3/10 {
			v = 16000 * math.Sin(2*math.Pi*1000*float64(i)/board.SpeakerRate)
		}
		binary.LittleEndian.PutUint16(b[44+2*i:], uint16(int16(v)))
	}
	path := filepath.Join(t.TempDir(), "tone.wav")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// loudest returns the loudest n samples of pcm (in steps of n/10) and
// their RMS.
func loudest(pcm []int16, n int) ([]int16, float64) {
	best, at := 0.0, 0
	for i := 0; i+n <= len(pcm); i += n / 10 {
		var e float64
		for _, v := range pcm[i : i+n] {
			e += float64(v) * float64(v)
		}
		if e > best {
			best, at = e, i
		}
	}
	return pcm[at : at+n], math.Sqrt(best / float64(n))
}

// phoneBrowser starts headless Chromium as a phone: its fake microphone
// plays wav, and the page may use it without asking.
func phoneBrowser(t *testing.T, wav string) context.Context {
	t.Helper()
	chromium := testenv.Tool(t, "chromium")
	actx, cancel := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.Flag("disable-features", "WebRtcHideLocalIpsWithMdns"),
		chromedp.Flag("ignore-certificate-errors", true),
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("use-file-for-fake-audio-capture", wav),
		chromedp.UserDataDir(t.TempDir()),
	)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	if _, err := chromedp.Run(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx
}

// waitScreen polls the page's call screen until done accepts it; an
// error the page shows, or ctx's end, fails the test.
func waitScreen(t *testing.T, ctx context.Context, what string, done func(callScreen) bool) callScreen {
	t.Helper()
	for {
		st, err := chromedp.Run(ctx, chromedp.Evaluate[callScreen](`window.camdCall`))
		if err != nil {
			t.Fatalf("waiting for %s: %v (last %+v)", what, err, st)
		}
		if st.Error != "" {
			t.Fatalf("waiting for %s: the page says %q", what, st.Error)
		}
		if done(st) {
			return st
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v (last %+v)", what, ctx.Err(), st)
		case <-time.After(100 * time.Millisecond): // polls the page only
		}
	}
}

// phonePage opens the web page in a fresh Chromium phone, paired with
// token, and waits until it holds the event stream open; it returns the
// tab's context (60 s) and the page's address.
func phonePage(t *testing.T, d *Daemon, token string) (context.Context, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(phoneBrowser(t, toneWAV(t, 10)), 60*time.Second)
	t.Cleanup(cancel)
	page := "https://" + d.Addr().String() + "/"
	for _, a := range []chromedp.Action[chromedp.Void]{
		chromedp.Navigate(page),
		chromedp.Evaluate[chromedp.Void](`localStorage.setItem("camd-token", ` + strconv.Quote(token) + `)`),
		chromedp.Navigate(page),
	} {
		if _, err := chromedp.Run(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	return ctx, page
}

// talkedBoth checks an answered call's media both ways: the page decodes
// the camera's picture and hears its microphone (codec mime, energy above
// silence), and the camera's simulated speaker plays the page's fake
// microphone: 1 kHz bursts (RMS and Goertzel on its loudest 100 ms).
func talkedBoth(t *testing.T, ctx context.Context, d *Daemon, mime string) {
	t.Helper()
	// The ring-back tone stopped with the answer: from now on the
	// speaker is the phone's.
	spk := d.board.sim.Speaker
	spk.Reset()
	st := waitScreen(t, ctx, "the camera's picture and sound", func(s callScreen) bool {
		return s.State == "connected" && s.FramesDecoded > 10 && s.AudioReceived > 50 && s.AudioSent > 50 && s.AudioEnergy > 0
	})
	if !strings.EqualFold(st.AudioCodec, mime) {
		t.Errorf("the camera's audio came as %q, want %s", st.AudioCodec, mime)
	}
	wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
	defer wcancel()
	if err := spk.Wait(wctx, 2*board.SpeakerRate); err != nil {
		t.Fatalf("the speaker played nothing of the phone's voice: %v", err)
	}
	pcm, _ := spk.Played()
	burst, rms := loudest(pcm, 4800)
	if g := tonetest.Share(burst, 1000); rms < 300 || g < 0.5 {
		t.Fatalf("the speaker's loudest 100 ms: RMS %.0f, %.2f of its power at 1 kHz", rms, g)
	}
	t.Logf("page: %d frames decoded, %d audio packets received (%s, energy %.3g), %d sent; speaker: RMS %.0f at its loudest",
		st.FramesDecoded, st.AudioReceived, st.AudioCodec, st.AudioEnergy, st.AudioSent, rms)
}

// TestWebPageTalksPCMU: a page that offers PCMU alone for the call's
// audio (as a phone without Opus): the camera's microphone reaches it as
// G.711 and decodes to sound, its voice reaches the speaker.
func TestWebPageTalksPCMU(t *testing.T) {
	d := running(t, syntheticSource)
	ownerToken := owner(t, d)
	sub := callEvents(t, d, ownerToken)
	ctx, _ := phonePage(t, d, ownerToken)
	waitScreen(t, ctx, "the event stream", func(s callScreen) bool { return s.Events == "open" })
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](`window.camdCall.audioCodecs = ["audio/PCMU"]`)); err != nil {
		t.Fatal(err)
	}
	c := ring(t, d, ownerToken)
	nextEvent(t, sub) // ringing
	waitScreen(t, ctx, "the ring", func(s callScreen) bool { return s.State == "ringing" && s.ID == c.ID })
	click(t, ctx, "answer")
	if e := nextEvent(t, sub); e.Kind != events.CallAnswered {
		t.Fatalf("%+v, want the answer", e)
	}
	talkedBoth(t, ctx, d, "audio/PCMU")
	click(t, ctx, "hangup")
	if e := nextEvent(t, sub); e.Kind != events.CallEnded || e.Data["reason"] != calls.ReasonHungUp {
		t.Fatalf("%+v, want the page's hang-up", e)
	}
}

// click clicks the page's button of that ID.
func click(t *testing.T, ctx context.Context, id string) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](`document.getElementById(`+strconv.Quote(id)+`).click()`)); err != nil {
		t.Fatalf("clicking %s: %v", id, err)
	}
}

// TestWebPageAnswersDoorbell: Chromium is the phone. The doorbell rings
// the web page (call.ringing on its event stream), the page answers with
// its microphone (a fake device playing 1 kHz bursts): the camera's
// simulated speaker plays them (Goertzel, not a byte compare), the page
// decodes the camera's picture and receives its microphone, and a second
// page that rang stops ringing ("answered elsewhere"); Hang up ends the
// call (call.ended, hung up by the page's user). The next call is
// declined on the page.
func TestWebPageAnswersDoorbell(t *testing.T) {
	d := running(t, syntheticSource)
	ownerToken := owner(t, d)
	me := userOf(t, d, ownerToken)
	sub := callEvents(t, d, ownerToken)
	ctx, page := phonePage(t, d, ownerToken)
	// A second phone: another tab of the same user (the same user's
	// other device rings too).
	other, cancelOther := chromedp.NewContext(ctx)
	defer cancelOther()
	if _, err := chromedp.Run(other, chromedp.Navigate(page)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []context.Context{ctx, other} {
		waitScreen(t, c, "the event stream", func(s callScreen) bool { return s.Events == "open" })
	}

	d.board.sim.Press(sim.Doorbell) // held until it rang: longer than the debounce
	pressed, ringing := nextEvent(t, sub), nextEvent(t, sub)
	d.board.sim.Release(sim.Doorbell)
	if pressed.Kind != events.DoorbellPressed || ringing.Kind != events.CallRinging {
		t.Fatalf("events %+v, %+v", pressed, ringing)
	}
	id := ringing.Data["call"]
	for _, c := range []context.Context{ctx, other} {
		waitScreen(t, c, "the ring", func(s callScreen) bool { return s.State == "ringing" && s.ID == id && s.Ringing })
	}

	click(t, ctx, "answer")
	if e := nextEvent(t, sub); e.Kind != events.CallAnswered || e.Data["user"] != me {
		t.Fatalf("%+v, want the page's answer", e)
	}
	waitScreen(t, other, "answered elsewhere", func(s callScreen) bool { return s.State == "answered elsewhere" && !s.Ringing })
	// The ring-back tone stopped with the answer: from now on the
	// speaker is the phone's.
	spk := d.board.sim.Speaker
	spk.Reset()
	talkedBoth(t, ctx, d, "audio/opus")

	click(t, ctx, "hangup")
	if e := nextEvent(t, sub); e.Kind != events.CallEnded || e.Data["reason"] != calls.ReasonHungUp || e.Data["user"] != me {
		t.Fatalf("%+v, want the page's hang-up", e)
	}
	waitScreen(t, ctx, "the end of the call", func(s callScreen) bool { return s.State == "ended" })

	// The next call, from the API, is declined on the page: the owner is
	// the only paired phone, so the call is declined.
	c := ring(t, d, ownerToken)
	if e := nextEvent(t, sub); e.Kind != events.CallRinging {
		t.Fatalf("%+v, want the second call's ring", e)
	}
	waitScreen(t, ctx, "the second ring", func(s callScreen) bool { return s.State == "ringing" && s.ID == c.ID })
	click(t, ctx, "decline")
	if e := nextEvent(t, sub); e.Kind != events.CallDeclined || e.Data["user"] != me {
		t.Fatalf("%+v, want the page's decline", e)
	}
	waitScreen(t, other, "the declined call", func(s callScreen) bool { return s.State == "declined" && !s.Ringing })
}
