package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/pion/rtp"

	"github.com/camd-project/camd/internal/testenv"
	"github.com/camd-project/camd/media/whep"
)

var rtspLine = regexp.MustCompile(`msg="camd: rtsp serving" url=(rtsp://\S+)`)

// rtspURL is the running camd's RTSP URL with the key's credentials.
func (d *daemon) rtspURL(t testing.TB, id, secret string) string {
	t.Helper()
	waitLog(t, d, "camd: rtsp serving")
	m := rtspLine.FindStringSubmatch(d.log())
	if m == nil {
		t.Fatalf("no RTSP URL in camd's log:\n%s", d.log())
	}
	return "rtsp://" + id + ":" + secret + "@" + m[1][len("rtsp://"):]
}

// streamKey makes a stream key over the API, as the owner.
func (d *daemon) streamKey(t testing.TB, name string) (id, secret, token string) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"for": name})
	req, _ := http.NewRequest("POST", "https://"+d.addr+"/api/v1/keys", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+d.token(t))
	req.Header.Set("Content-Type", "application/json")
	res, err := insecureClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var k struct{ ID, Secret, Token string }
	if err := json.NewDecoder(res.Body).Decode(&k); err != nil || res.StatusCode != http.StatusCreated {
		t.Fatalf("stream key: %d %v", res.StatusCode, err)
	}
	return k.ID, k.Secret, k.Token
}

// rtspConfig is camd on a passthrough file (a hardware encoder's stream:
// the frames are the file's, 30 a second, none skipped by an encoder),
// RTSP on a free loopback port with UDP, and room for all the viewers
// from one address.
func rtspConfig(t testing.TB, size string) string {
	t.Helper()
	need(t, "ffmpeg")
	file := fixture(t, benchDir(t), size, 30, 20, 60, "2M", "high")
	return writeConfig(t, fmt.Sprintf("source: passthrough\npassthrough: {file: %s}\n"+
		"rtsp: {listen: 127.0.0.1:0, rtp_port: %d}\nlive: {max_viewers: 32, max_viewers_per_user: 32}\n", file, testenv.FreeRTPPort(t)))
}

// rtspWatch is what one RTSP client saw.
type rtspWatch struct {
	frames, replayed int
	// skipped counts the frames missing between two consecutive live
	// ones (their RTP timestamps one frame interval apart); lostPackets
	// the gaps in RTP sequence numbers.
	skipped, lostPackets int
	audio                int
	firstFrame           time.Duration
	err                  error
}

// watchRTSP plays url with gortsplib's client over transport until ctx
// ends, counting video frames by their marker bit and checking that
// each live frame follows the last by one frame interval (30 fps).
func watchRTSP(ctx context.Context, url string, transport gortsplib.Transport) (w rtspWatch) {
	start := time.Now()
	u, err := base.ParseURL(url)
	if err != nil {
		return rtspWatch{err: err}
	}
	c := gortsplib.Client{Scheme: u.Scheme, Host: u.Host, Transport: &transport, UDPReadBufferSize: 4 << 20}
	if err := c.Start2(); err != nil {
		return rtspWatch{err: err}
	}
	defer c.Close()
	desc, _, err := c.Describe(u)
	if err != nil {
		return rtspWatch{err: err}
	}
	if err := c.SetupAll(desc.BaseURL, desc.Medias); err != nil {
		return rtspWatch{err: err}
	}
	var mu sync.Mutex
	var lastTS uint32
	var lastSeq uint16
	started := false
	for _, m := range desc.Medias {
		for _, f := range m.Formats {
			if _, ok := f.(*format.H264); ok {
				c.OnPacketRTP(m, f, func(p *rtp.Packet) {
					mu.Lock()
					defer mu.Unlock()
					if started && p.SequenceNumber != lastSeq+1 {
						w.lostPackets += int(p.SequenceNumber - lastSeq - 1)
					}
					lastSeq = p.SequenceNumber
					if !started {
						started, w.firstFrame = true, time.Since(start)
					}
					if !p.Marker {
						return
					}
					if w.frames > 0 {
						switch d := p.Timestamp - lastTS; {
						case d == 1:
							w.replayed++ // from the cached group of pictures
						case d > 3000:
							w.skipped += int(d/3000) - 1
						}
					}
					lastTS = p.Timestamp
					w.frames++
				})
			} else {
				c.OnPacketRTP(m, f, func(*rtp.Packet) {
					mu.Lock()
					w.audio++
					mu.Unlock()
				})
			}
		}
	}
	if _, err := c.Play(nil); err != nil {
		return rtspWatch{err: err}
	}
	select {
	case <-ctx.Done():
	case err := <-waitErr(&c):
		mu.Lock()
		w.err = err
		mu.Unlock()
	}
	mu.Lock()
	defer mu.Unlock()
	return w
}

func waitErr(c *gortsplib.Client) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- c.Wait() }()
	return ch
}

// viewers runs nRTSP RTSP clients (half over TCP, half over UDP) and
// nWHEP WebRTC viewers of d at once for watch.
func viewers(t testing.TB, d *daemon, nRTSP, nWHEP int, watch time.Duration) ([]rtspWatch, []whep.ViewStats, []error) {
	id, secret, token := d.streamKey(t, "nvr")
	url := d.rtspURL(t, id, secret)
	ctx, cancel := context.WithTimeout(context.Background(), watch)
	defer cancel()
	rw := make([]rtspWatch, nRTSP)
	ws := make([]whep.ViewStats, nWHEP)
	werrs := make([]error, nWHEP)
	var wg sync.WaitGroup
	for i := range nRTSP {
		tr := gortsplib.TransportTCP
		if i%2 == 1 {
			tr = gortsplib.TransportUDP
		}
		wg.Go(func() { rw[i] = watchRTSP(ctx, url, tr) })
	}
	for i := range nWHEP {
		conn := viewerSocket(t)
		wg.Go(func() {
			defer conn.Close()
			ws[i], werrs[i] = whep.View(ctx, "https://"+d.addr+"/api/v1/whep", whep.ViewOptions{
				HTTPClient: insecureClient(), Conn: conn, Header: http.Header{"Authorization": {"Bearer " + token}}})
		})
	}
	wg.Wait()
	return rw, ws, werrs
}

// TestEightRTSPAndEightWebRTCViewers: 8 RTSP clients (4 TCP, 4 UDP) and 8
// WebRTC viewers watch one camd at once, all on one stream key; each gets
// every frame of the 30 fps stream from its first keyframe on.
func TestEightRTSPAndEightWebRTCViewers(t *testing.T) {
	d := startDaemon(t, "--config", rtspConfig(t, "640x360"))
	const watch = 8 * time.Second
	rw, ws, werrs := viewers(t, d, 8, 8, watch)
	for i, w := range rw {
		t.Logf("rtsp %d: %d frames (%d replayed), %d audio packets, first packet after %v", i, w.frames, w.replayed, w.audio, w.firstFrame)
		if w.err != nil {
			t.Errorf("rtsp client %d: %v", i, w.err)
		}
		// 8 s at 30 fps, less the time to set up: at least 6 s of it.
		if w.frames < 180 || w.skipped != 0 || w.lostPackets != 0 {
			t.Errorf("rtsp client %d: %d frames, %d skipped, %d packets lost", i, w.frames, w.skipped, w.lostPackets)
		}
	}
	for i, s := range ws {
		t.Logf("webrtc %d: %d frames, %d lost", i, s.FramesReceived, s.FramesLost)
		if werrs[i] != nil {
			t.Errorf("webrtc viewer %d: %v", i, werrs[i])
		}
		if s.FramesReceived < 180 || s.FramesLost != 0 {
			t.Errorf("webrtc viewer %d: %d frames, %d lost", i, s.FramesReceived, s.FramesLost)
		}
	}
}
