package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/camd-project/camd/internal/testenv"
)

// The interop tests play camd's live view with clients camd's authors did
// not write: MediaMTX pulling it as a WHEP source, go2rtc's WebRTC client,
// and two npm WHEP players in Chromium. Each decodes the stream, sends
// the paired bearer token, and pins camd's self-signed certificate the
// way it can. scripts/interop-tools.sh builds them once into a cache
// (testenv.Interop).

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// decodeFrames decodes the first seconds of a file or URL with ffprobe
// and returns "codec,width,height" and the number of frames decoded.
func decodeFrames(t testing.TB, input string, args ...string) (string, int) {
	t.Helper()
	out := ffprobe(t, input, append(args, "-select_streams", "v:0", "-count_frames", "-read_intervals", "%+3",
		"-show_entries", "stream=codec_name,width,height,nb_read_frames", "-of", "csv=p=0")...)
	fields := strings.Split(strings.TrimSpace(strings.Split(out, "\n")[0]), ",")
	if len(fields) != 4 {
		t.Fatalf("ffprobe %s: %q", input, out)
	}
	n, _ := strconv.Atoi(fields[3])
	return strings.Join(fields[:3], ","), n
}

// go2rtcView plays camd's live view with the go2rtc client program and
// returns its report; the video goes to out.
type go2rtcReport struct {
	FirstFrameMs float64 `json:"first_frame_ms"`
	Frames       int     `json:"frames"`
	Codec        string  `json:"codec"`
}

func go2rtcView(t testing.TB, tool string, d *daemon, fingerprint, out string, frames int) (go2rtcReport, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, tool, "-url", "https://"+d.addr+"/api/v1/whep", "-token", d.token(t),
		"-fingerprint", fingerprint, "-frames", strconv.Itoa(frames), "-out", out)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		return go2rtcReport{}, fmt.Errorf("go2rtc-whep: %v\n%s", err, stderr.String())
	}
	var r go2rtcReport
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("go2rtc-whep printed %q: %v", b, err)
	}
	return r, nil
}

func TestInteropGo2RTC(t *testing.T) {
	need(t, "ffprobe")
	tool := testenv.Interop(t, "go2rtc")
	d := startDaemon(t)
	out := filepath.Join(t.TempDir(), "go2rtc.h264")
	r, err := go2rtcView(t, tool, d, d.fingerprint, out, 60)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("go2rtc: first frame after %.0f ms on %s", r.FirstFrameMs, r.Codec)
	if stream, n := decodeFrames(t, out, "-f", "h264"); stream != "h264,1280,720" || n < 55 {
		t.Fatalf("go2rtc's video decodes as %s, %d frames; want h264,1280,720 and 60", stream, n)
	}
	// A certificate other than the pinned one is refused before any
	// credential is sent.
	if _, err := go2rtcView(t, tool, d, strings.Repeat("00", 32), out, 1); err == nil || !strings.Contains(err.Error(), "does not match the pin") {
		t.Fatalf("another certificate: %v", err)
	}
}

// mediamtx runs MediaMTX pulling camd's live view as a WHEP source
// (wheps:// with sourceFingerprint and whepBearerToken) and re-serving it
// over RTSP; it returns the RTSP URL once the source is ready, or, with
// onDemand, once MediaMTX listens (it pulls when a reader comes), and a
// function that stops MediaMTX (the test's end does too).
func mediamtx(t testing.TB, tool string, d *daemon, onDemand bool) (string, func()) {
	t.Helper()
	dir := t.TempDir()
	port := freePort(t)
	conf := fmt.Sprintf(`logLevel: debug
api: false
rtmp: false
hls: false
webrtc: false
srt: false
moq: false
rtspTransports: [tcp]
rtspAddress: 127.0.0.1:%d
paths:
  cam:
    source: wheps://%s/api/v1/whep
    sourceFingerprint: %s
    whepBearerToken: %s
    sourceOnDemand: %v
`, port, d.addr, d.fingerprint, d.token(t), onDemand)
	logs, stop := startMediaMTX(t, tool, dir, conf)
	ready := "stream is available and online"
	if onDemand {
		ready = "[RTSP] started"
	}
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(logs.String(), ready) {
		if time.Now().After(deadline) {
			t.Fatalf("MediaMTX's WHEP source never got ready:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Sprintf("rtsp://127.0.0.1:%d/cam", port), stop
}

// startMediaMTX runs MediaMTX with conf in dir until the test ends; it
// returns its log, which a test reads while MediaMTX writes it, and a
// function that stops it gracefully (a stopped MediaMTX ends its WHEP
// session with DELETE: a killed one would hold a viewer slot until
// camd's ICE timeout). The log is shown when the test failed.
func startMediaMTX(t testing.TB, tool, dir, conf string) (*testenv.Buffer, func()) {
	t.Helper()
	m := runMediaMTX(t, tool, dir, conf)
	return m.logs, m.stop
}

// mediaMTXProcess is a running MediaMTX: its log, stop (graceful) and
// kill (SIGKILL: an SFU that crashes).
type mediaMTXProcess struct {
	logs       *testenv.Buffer
	stop, kill func()
	pid        int
}

func runMediaMTX(t testing.TB, tool, dir, conf string) mediaMTXProcess {
	t.Helper()
	path := filepath.Join(dir, "mediamtx.yml")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(tool, path)
	cmd.Dir = dir
	logs := &testenv.Buffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var ended sync.Once
	end := func(sig os.Signal) {
		ended.Do(func() {
			cmd.Process.Signal(sig)
			kill := time.AfterFunc(10*time.Second, func() { cmd.Process.Kill() })
			cmd.Wait()
			kill.Stop()
			if t.Failed() {
				t.Logf("MediaMTX log:\n%s", logs.String())
			}
		})
	}
	stop := func() { end(os.Interrupt) }
	kill := func() { end(os.Kill) }
	t.Cleanup(stop)
	return mediaMTXProcess{logs: logs, stop: stop, kill: kill, pid: cmd.Process.Pid}
}

// mediaMTXReserves checks what MediaMTX re-serves of camd's live view
// over RTSP: ffprobe decodes 720p H.264 (30 frames in 3 s at least) and
// Opus.
func mediaMTXReserves(t *testing.T, rtsp string) (stream string, frames int, audio string) {
	t.Helper()
	stream, frames = decodeFrames(t, rtsp, "-rtsp_transport", "tcp")
	if stream != "h264,1280,720" || frames < 30 {
		t.Fatalf("MediaMTX re-serves %s, %d frames decoded in 3 s", stream, frames)
	}
	audio = ffprobe(t, rtsp, "-rtsp_transport", "tcp", "-select_streams", "a:0", "-show_entries", "stream=codec_name", "-of", "csv=p=0")
	if audio != "opus" {
		t.Errorf("MediaMTX re-serves audio as %q, want opus", audio)
	}
	return stream, frames, audio
}

func TestInteropMediaMTX(t *testing.T) {
	need(t, "ffprobe")
	tool := testenv.Interop(t, "mediamtx")
	d := startDaemon(t)
	rtsp, _ := mediamtx(t, tool, d, false)
	stream, n, audio := mediaMTXReserves(t, rtsp)
	t.Logf("MediaMTX over RTSP: %s, %d frames in 3 s, audio %s", stream, n, audio)
}

// playerState is window.result of testdata/whepplayers/index.html.
type playerState struct {
	Player        string  `json:"player"`
	Started       bool    `json:"started"`
	TTFFMs        float64 `json:"ttffMs"`
	FramesDecoded int     `json:"framesDecoded"`
	Width         int     `json:"width"`
	Height        int     `json:"height"`
	Error         string  `json:"error"`
}

func (s playerState) pageError() string { return s.Error }

// spkiPin is the base64 SHA-256 of camd's certificate's public key, as
// Chromium's --ignore-certificate-errors-spki-list pins it.
func spkiPin(t testing.TB, addr string) string {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sum := sha256.Sum256(conn.ConnectionState().PeerCertificates[0].RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

func TestInteropBrowserPlayers(t *testing.T) {
	need(t, "chromium")
	bundle := testenv.Interop(t, "npm")
	// The players' page comes from another origin than camd's, which
	// camd's configuration allows.
	mux := http.NewServeMux()
	mux.Handle("GET /", http.FileServer(http.Dir("testdata/whepplayers")))
	mux.HandleFunc("GET /players.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		http.ServeFile(w, r, bundle)
	})
	page := httptest.NewServer(mux)
	defer page.Close()
	conf := filepath.Join(t.TempDir(), "camd.yaml")
	os.WriteFile(conf, []byte(fmt.Sprintf("cors: {allowed_origins: [%q]}\n", page.URL)), 0o600)
	d := startDaemon(t, "--config", conf)
	ctx := browserWith(t, chromedp.Flag("ignore-certificate-errors-spki-list", spkiPin(t, d.addr)))

	open := func(t *testing.T, origin, player string) context.Context {
		q := url.Values{"player": {player}, "url": {"https://" + d.addr + "/api/v1/whep"}, "token": {d.token(t)}}
		tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		t.Cleanup(cancel)
		if _, err := chromedp.Run(tctx, chromedp.Navigate(origin+"/index.html?"+q.Encode())); err != nil {
			t.Fatal(err)
		}
		return tctx
	}
	for _, player := range []string{"whip-whep", "eyevinn"} {
		t.Run(player, func(t *testing.T) {
			st := pollPage(t, open(t, page.URL, player), "window.result", func(s playerState) bool {
				return s.FramesDecoded > 10 && s.TTFFMs > 0
			})
			if st.Width != 1280 || st.Height != 720 {
				t.Errorf("decoded %dx%d", st.Width, st.Height)
			}
			t.Logf("%s: first frame after %.0f ms, %d frames decoded", player, st.TTFFMs, st.FramesDecoded)
		})
	}
	// The same page from an origin camd does not allow (localhost is not
	// 127.0.0.1 to a browser) cannot read camd's answers.
	t.Run("disallowed origin", func(t *testing.T) {
		other := strings.Replace(page.URL, "127.0.0.1", "localhost", 1)
		tctx := open(t, other, "whip-whep")
		for {
			st, err := chromedp.Run(tctx, chromedp.Evaluate[playerState]("window.result"))
			if err != nil {
				t.Fatalf("reading the page: %v", err)
			}
			if st.FramesDecoded > 0 || st.Started {
				t.Fatalf("a disallowed origin played: %+v", st)
			}
			if strings.Contains(st.Error, "Failed to fetch") {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
}

// setSettings changes settings with camctl (KEY=VALUE...) as the owner.
func (d *daemon) setSettings(t testing.TB, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := camctl(t, ctx, append([]string{"settings", "set", "--store", d.store}, args...)...); err != nil {
		t.Fatal(err)
	}
}

// whipStatus is GET /api/v1/whip.
type whipStatus struct {
	State    string `json:"state"`
	Endpoint string `json:"endpoint"`
	Error    string `json:"error"`
	Failures int    `json:"failures"`
	Frames   uint64 `json:"frames"`
}

// waitWHIP waits until camd's publish is in state, and returns its
// status.
func waitWHIP(t *testing.T, d *daemon, state string) whipStatus {
	t.Helper()
	var st whipStatus
	deadline := time.Now().Add(time.Minute)
	for {
		if code := d.api(t, "/api/v1/whip", &st); code != http.StatusOK {
			t.Fatalf("GET /api/v1/whip: %d", code)
		}
		if st.State == state {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("the publish never got %s: %+v", state, st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// whipMediaMTXConf is MediaMTX as a WHIP server on loopback: WHIP and
// WHEP on whipPort (path "porch"), its WebRTC media on udpPort, RTSP on
// rtspPort. User cam (password s3cret-publish) may publish; anyone on
// 127.0.0.1 may read.
func whipMediaMTXConf(rtspPort, whipPort, udpPort int) string {
	return fmt.Sprintf(`logLevel: debug
api: false
rtmp: false
hls: false
srt: false
moq: false
rtspTransports: [tcp]
rtspAddress: 127.0.0.1:%d
webrtcAddress: 127.0.0.1:%d
webrtcLocalUDPAddress: 127.0.0.1:%d
webrtcLocalTCPAddress: ""
webrtcIPsFromInterfaces: false
webrtcAdditionalHosts: [127.0.0.1]
authInternalUsers:
  - user: cam
    pass: s3cret-publish
    ips: []
    permissions:
      - action: publish
        path: porch
  - user: any
    pass:
    ips: [127.0.0.1]
    permissions:
      - action: read
        path: porch
paths:
  porch: {}
`, rtspPort, whipPort, udpPort)
}

// TestInteropWHIPToMediaMTX: camd publishes its live stream with WHIP to
// MediaMTX v1.20.1 (an internal user allowed to publish one path, the
// credential as "Bearer user:pass"); ffprobe decodes what MediaMTX
// re-serves over RTSP. An unreachable endpoint is retried; a wrong token
// is refused once and not retried; MediaMTX killed mid-stream and started
// again on the same ports is published to again.
func TestInteropWHIPToMediaMTX(t *testing.T) {
	need(t, "ffprobe")
	tool := testenv.Interop(t, "mediamtx")
	d := startDaemon(t)
	rtspPort, whipPort := freePort(t), freePort(t)
	conf := whipMediaMTXConf(rtspPort, whipPort, freePort(t))
	dir := t.TempDir()
	endpoint := fmt.Sprintf("http://127.0.0.1:%d/porch/whip", whipPort)
	rtsp := fmt.Sprintf("rtsp://127.0.0.1:%d/porch", rtspPort)

	// Nothing listens yet: camd retries.
	d.setSettings(t, "whip_url="+endpoint, "whip_token=cam:s3cret-publish")
	if st := waitWHIP(t, d, "retrying"); !strings.Contains(st.Error, "connection refused") || st.Endpoint != fmt.Sprintf("http://127.0.0.1:%d", whipPort) {
		t.Errorf("unreachable: %+v", st)
	}

	sfu := runMediaMTX(t, tool, dir, conf)
	st := waitWHIP(t, d, "publishing")
	stream, n, audio := mediaMTXReserves(t, rtsp)
	t.Logf("camd → WHIP → MediaMTX → RTSP: %s, %d frames in 3 s, audio %s; status %+v", stream, n, audio, st)

	// MediaMTX crashes, and comes back on the same ports.
	sfu.kill()
	waitWHIP(t, d, "retrying")
	sfu = runMediaMTX(t, tool, dir, conf)
	waitWHIP(t, d, "publishing")
	if stream, n := decodeFrames(t, rtsp, "-rtsp_transport", "tcp"); stream != "h264,1280,720" || n < 30 {
		t.Fatalf("after MediaMTX restarted: %s, %d frames decoded in 3 s", stream, n)
	}
	var events []struct {
		Type string            `json:"type"`
		Data map[string]string `json:"data"`
	}
	d.api(t, "/api/v1/events?type=whip.*", &events)
	var kinds []string
	for _, e := range events {
		kinds = append(kinds, e.Type)
	}
	if !slices.Contains(kinds, "whip.failed") || !slices.Contains(kinds, "whip.recovered") {
		t.Errorf("events %v", kinds)
	}

	// A wrong token: refused (MediaMTX answers 401), not retried.
	d.setSettings(t, "whip_token=cam:wrong")
	st = waitWHIP(t, d, "refused")
	if !strings.Contains(st.Error, "401") || st.Failures != 1 {
		t.Errorf("wrong token: %+v", st)
	}
	sfu.stop()
	if strings.Contains(d.log(), "s3cret-publish") {
		t.Error("camd logged the token")
	}
}

// selfSigned writes a self-signed certificate for 127.0.0.1 and its key
// (PEM) into dir, and returns their paths and the certificate's SHA-256
// in hex.
func selfSigned(t *testing.T, dir string) (certFile, keyFile, pin string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sfu"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "sfu.crt"), filepath.Join(dir, "sfu.key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
	sum := sha256.Sum256(der)
	return certFile, keyFile, hex.EncodeToString(sum[:])
}

// TestInteropWHIPToMediaMTXOverHTTPS: MediaMTX's WHIP endpoint over HTTPS
// with a self-signed certificate: camd publishes when the owner pins it
// (whip_pin_sha256), and not when another is pinned.
func TestInteropWHIPToMediaMTXOverHTTPS(t *testing.T) {
	need(t, "ffprobe")
	tool := testenv.Interop(t, "mediamtx")
	d := startDaemon(t)
	dir := t.TempDir()
	certFile, keyFile, pin := selfSigned(t, dir)
	rtspPort, whipPort := freePort(t), freePort(t)
	conf := whipMediaMTXConf(rtspPort, whipPort, freePort(t)) +
		fmt.Sprintf("webrtcEncryption: true\nwebrtcServerKey: %s\nwebrtcServerCert: %s\n", keyFile, certFile)
	sfu := runMediaMTX(t, tool, dir, conf)
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(sfu.logs.String(), "[WebRTC] started with listeners"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("MediaMTX's WebRTC server never started:\n%s", sfu.logs.String())
		}
	}
	other := strings.Repeat("ab", 32)
	d.setSettings(t, fmt.Sprintf("whip_url=https://127.0.0.1:%d/porch/whip", whipPort), "whip_token=cam:s3cret-publish", "whip_pin_sha256="+other)
	if st := waitWHIP(t, d, "retrying"); !strings.Contains(st.Error, "not the pinned one") {
		t.Errorf("another pin: %+v", st)
	}
	d.setSettings(t, "whip_pin_sha256="+pin)
	waitWHIP(t, d, "publishing")
	stream, n, _ := mediaMTXReserves(t, fmt.Sprintf("rtsp://127.0.0.1:%d/porch", rtspPort))
	t.Logf("camd → WHIP over HTTPS (pinned) → MediaMTX → RTSP: %s, %d frames in 3 s", stream, n)
}
