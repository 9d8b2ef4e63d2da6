package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/camd-project/camd/device/pairing"
)

// viewerState mirrors window.camd in the web page.
type viewerState struct {
	State         string  `json:"state"`
	Watching      string  `json:"watching"`
	TTFFMs        float64 `json:"ttffMs"`
	FramesDecoded int     `json:"framesDecoded"`
	Width         int     `json:"width"`
	Height        int     `json:"height"`
	AudioPackets  int     `json:"audioPackets"`
	AudioSamples  int     `json:"audioSamples"`
	Error         string  `json:"error"`
}

// browser starts headless Chromium with the flags that work as root on a
// closed network, trusting any certificate.
func browser(t testing.TB) context.Context {
	t.Helper()
	return browserWith(t, chromedp.Flag("ignore-certificate-errors", true))
}

// browserWith starts headless Chromium as browser does, trusting the
// certificates trust says (a flag); more are further options (where
// Chromium runs).
func browserWith(t testing.TB, trust chromedp.ExecAllocatorOption, more ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	need(t, "chromium")
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath("chromium"),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.Flag("disable-features", "WebRtcHideLocalIpsWithMdns"),
		trust,
		chromedp.UserDataDir(t.TempDir()),
	}
	opts = append(opts, more...)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	if _, err := chromedp.Run(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx
}

// watch opens the web page at url and waits until it has decoded frames
// and, if wantAudio, received audio.
func watch(t testing.TB, ctx context.Context, url string, wantAudio bool) viewerState {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("navigate: %v", err)
	}
	return pollPage(t, ctx, `window.camd`, func(st viewerState) bool {
		return st.FramesDecoded > 10 && (!wantAudio || st.AudioPackets > 10) && st.TTFFMs > 0
	})
}

// pageState is a state the web page exposes on window, with the error it
// shows.
type pageState interface{ pageError() string }

func (s viewerState) pageError() string { return s.Error }

// pollPage evaluates expr in the page every 100 ms until done accepts the
// state; an error the page shows, or ctx's end, fails the test.
func pollPage[T pageState](t testing.TB, ctx context.Context, expr string, done func(T) bool) T {
	t.Helper()
	for {
		st, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
		if err != nil {
			t.Fatalf("reading %s: %v (last state %+v)", expr, err, st)
		}
		if e := st.pageError(); e != "" {
			t.Fatalf("page error: %s", e)
		}
		if done(st) {
			return st
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestChromiumPlaysSyntheticCamera(t *testing.T) {
	d := startDaemon(t)
	ctx := browser(t)
	// The browser pairs through an invitation link from the owner, then
	// plays.
	st := watch(t, ctx, d.inviteLink(t), true)
	if st.Width != 1280 || st.Height != 720 {
		t.Errorf("decoded %dx%d, want 1280x720", st.Width, st.Height)
	}
	if st.State != "connected" {
		t.Errorf("connection state %q", st.State)
	}
	if st.AudioSamples == 0 {
		t.Errorf("audio packets arrived but no samples were decoded")
	}
	t.Logf("Chromium: first frame after %.0f ms, %d frames decoded, %d audio packets", st.TTFFMs, st.FramesDecoded, st.AudioPackets)
	d.stop()
	if !strings.Contains(d.log(), "camd: stopped") {
		t.Errorf("no clean stop in the log")
	}
}

var statLine = regexp.MustCompile(`(?m)^(frames received|frames lost|first frame|resolution)\s+(\S+)`)

func TestCamctlViewOutputDecodes(t *testing.T) {
	need(t, "ffprobe")
	d := startDaemon(t)
	dir := t.TempDir()
	video, audio := filepath.Join(dir, "v.h264"), filepath.Join(dir, "a.ogg")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := camctl(t, ctx, "view", "--store", d.store, "--seconds", "3", "--video", video, "--audio", audio)
	if err != nil {
		t.Fatal(err)
	}
	stats := map[string]string{}
	for _, m := range statLine.FindAllStringSubmatch(out, -1) {
		stats[m[1]] = m[2]
	}
	received, _ := strconv.Atoi(stats["frames received"])
	if received < 60 || stats["frames lost"] != "0" || stats["resolution"] != "1280x720" {
		t.Errorf("camctl view printed:\n%s", out)
	}
	frames, _ := strconv.Atoi(ffprobe(t, video, "-count_frames", "-select_streams", "v", "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0"))
	if frames < received-1 {
		t.Errorf("ffprobe decoded %d frames of the %d camctl received", frames, received)
	}
	if got := ffprobe(t, video, "-show_entries", "stream=codec_name,width,height", "-of", "csv=p=0"); got != "h264,1280,720" {
		t.Errorf("video stream: %q", got)
	}
	if got := ffprobe(t, audio, "-show_entries", "stream=codec_name,sample_rate", "-of", "csv=p=0"); got != "opus,48000" {
		t.Errorf("audio stream: %q", got)
	}
	dur, _ := strconv.ParseFloat(ffprobe(t, audio, "-show_entries", "format=duration", "-of", "csv=p=0"), 64)
	if dur < 2 {
		t.Errorf("audio lasts %.2f s of 3 s watched", dur)
	}
	if fi, err := os.Stat(video); err != nil || fi.Size() == 0 {
		t.Fatalf("video file: %v", err)
	}
	d.stop()
}

// TestCamctlRefusesWrongCertificate pairs with a code whose fingerprint
// is not the camera's: camctl must abort in the TLS handshake, before it
// sends anything, and the camera must see no pairing attempt.
func TestCamctlRefusesWrongCertificate(t *testing.T) {
	d := startDaemon(t)
	out, err := exec.Command(filepath.Join(bin, "camd"), "pair-window", "--data", d.data).CombinedOutput()
	if err != nil {
		t.Fatalf("camd pair-window: %v\n%s", err, out)
	}
	qr, _ := exec.Command(filepath.Join(bin, "camd"), "qr", "--data", d.data).Output()
	lines := strings.Split(strings.TrimSpace(string(qr)), "\n")
	p, err := pairing.Parse(lines[len(lines)-1])
	if err != nil {
		t.Fatal(err)
	}
	p.Fingerprint[0] ^= 0xff // a man in the middle's certificate
	before := len(d.log())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = camctl(t, ctx, "pair", "--store", filepath.Join(t.TempDir(), "c.json"), p.String())
	if err == nil || !strings.Contains(err.Error(), "does not match the pinned fingerprint") {
		t.Fatalf("camctl with a wrong fingerprint: %v", err)
	}
	time.Sleep(100 * time.Millisecond)
	after := d.log()[before:]
	if strings.Contains(after, "pairing:") || !strings.Contains(after, "TLS handshake error") {
		t.Fatalf("the camera saw more than a refused handshake:\n%s", after)
	}
}

// TestShutdownClosesViewers stops camd while camctl watches: the viewer
// learns at once (DTLS close) instead of waiting for a timeout.
func TestShutdownClosesViewers(t *testing.T) {
	d := startDaemon(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := camctl(t, ctx, "view", "--store", d.store, "--seconds", "30")
		done <- err
	}()
	waitLog(t, d, "whep: viewer joined")
	time.Sleep(time.Second)
	d.stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("camctl: %v", err)
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("camctl took %v to notice camd stopped", time.Since(start))
		}
	case <-time.After(15 * time.Second):
		t.Fatal("camctl still watching 15 s after camd stopped")
	}
	if !strings.Contains(d.log(), `reason="server closing"`) {
		t.Error("camd did not close the viewer's session on shutdown")
	}
}

// TestCaptureWithoutCameraKeepsServing starts camd on a V4L2 camera that
// does not exist (this machine has none): the source fails with a clear
// log line and is retried, and camd keeps answering.
func TestCaptureWithoutCameraKeepsServing(t *testing.T) {
	d := startDaemon(t, "--config", writeConfig(t, "source: capture\ncapture: {device: /dev/video-none}\n"))
	waitLog(t, d, "/dev/video-none")
	waitLog(t, d, "media: source failed; restarting")
	health(t, d)
	d.stop()
}
