package device

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/camd-project/camd/device/api"
	"github.com/camd-project/camd/internal/testenv"
	"github.com/camd-project/camd/media/whep"
)

// rtspConfig is testConfig with the RTSP server on a free loopback port,
// TCP only.
func rtspConfig(t *testing.T) Config {
	cfg := testConfig(t)
	cfg.RTSP.Listen, cfg.RTSP.RTPPort = "127.0.0.1:0", 0
	return cfg
}

// TestRevokedKeyStopsEverywhere: a stream key opens RTSP (digest), WHEP
// (bearer) and snapshot.jpg (Basic); revoked, its open RTSP and WHEP
// sessions end within a second and each door refuses it.
func TestRevokedKeyStopsEverywhere(t *testing.T) {
	ffmpeg := testenv.Tool(t, "ffmpeg")
	d, _ := runningAt(t, rtspConfig(t))
	ownerToken := owner(t, d)
	key := streamKey(t, d, ownerToken, "nvr")
	base := "https://" + d.Addr().String()
	rtspURL := "rtsp://" + key.ID + ":" + key.Secret + "@" + d.rtsp.Addr().String() + "/live"

	if code := callBasic(t, d, "GET", "/api/v1/snapshot.jpg", key.ID, key.Secret); code != http.StatusOK {
		t.Fatalf("snapshot.jpg with the key: %d", code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, ffmpeg, "-v", "error", "-rtsp_transport", "tcp", "-i", rtspURL, "-f", "null", "-")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ffmpegDone := make(chan error, 1)
	go func() { ffmpegDone <- cmd.Wait() }()
	viewing := make(chan error, 1)
	go func() {
		_, err := whep.View(ctx, base+"/api/v1/whep", whep.ViewOptions{HTTPClient: testClient(), Header: http.Header{"Authorization": {"Bearer " + key.Token}}})
		viewing <- err
	}()
	testenv.Eventually(t, "an RTSP and a WHEP session of the key, both playing", func() bool {
		r, w := d.rtsp.Stats().Sessions, d.whep.Stats().Sessions
		return len(r) == 1 && r[0].Frames > 5 && len(w) == 1 && w[0].Frames > 5 && w[0].User == "key:"+key.ID
	})

	if code, b := call(t, d, "DELETE", "/api/v1/keys/"+key.ID, ownerToken, nil); code != http.StatusNoContent {
		t.Fatalf("revoke: %d %s", code, b)
	}
	revoked := time.Now()
	testenv.Eventually(t, "no session of the revoked key", func() bool {
		return len(d.rtsp.Stats().Sessions) == 0 && len(d.whep.Stats().Sessions) == 0
	})
	if took := time.Since(revoked); took > time.Second {
		t.Errorf("sessions ended %v after the revocation, want within 1 s", took)
	}
	select {
	case <-ffmpegDone:
	case <-time.After(20 * time.Second):
		t.Fatalf("ffmpeg still playing 20 s after the revocation\n%s", stderr.String())
	}
	if err := <-viewing; err != nil && !errors.Is(err, context.DeadlineExceeded) {
		t.Logf("the WHEP viewer ended with %v", err)
	}

	if code := callBasic(t, d, "GET", "/api/v1/snapshot.jpg", key.ID, key.Secret); code != http.StatusUnauthorized {
		t.Errorf("snapshot.jpg with a revoked key: %d", code)
	}
	if code, _ := call(t, d, "GET", "/api/v1/mjpeg", key.Token, nil); code != http.StatusUnauthorized {
		t.Errorf("mjpeg with a revoked key: %d", code)
	}
	short, stop := context.WithTimeout(context.Background(), 5*time.Second)
	defer stop()
	// The refusal comes before the offer is read: the offer waits for
	// 100 Continue, or the client (no keep-alive) may still be writing
	// it when camd closes the connection.
	expecting := testClient()
	expecting.Transport.(*http.Transport).ExpectContinueTimeout = 5 * time.Second
	if _, err := whep.View(short, base+"/api/v1/whep", whep.ViewOptions{HTTPClient: expecting,
		Header: http.Header{"Authorization": {"Bearer " + key.Token}, "Expect": {"100-continue"}}}); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("WHEP with a revoked key: %v", err)
	}
	out, err := exec.CommandContext(short, ffmpeg, "-v", "error", "-rtsp_transport", "tcp", "-i", rtspURL, "-t", "1", "-f", "null", "-").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "401") {
		t.Errorf("RTSP with a revoked key: %v %s", err, out)
	}
}

// TestNewKeyShowsItsRTSPURL: with the RTSP server on, a new key comes
// with the stream's URL, credentials in it.
func TestNewKeyShowsItsRTSPURL(t *testing.T) {
	d, _ := runningAt(t, rtspConfig(t))
	code, b := call(t, d, "POST", "/api/v1/keys", owner(t, d), map[string]string{"for": "frigate"})
	if code != http.StatusCreated || !strings.Contains(string(b), `"rtsp": "rtsp://`) || !strings.Contains(string(b), ":"+strconv.Itoa(rtspPort(d.rtsp))+"/live") {
		t.Fatalf("%d %s", code, b)
	}
}

// TestOwnerSeesAndEndsRTSPSessions: GET /api/v1/sessions lists an RTSP
// session with its key's user, and DELETE /api/v1/sessions/{id} ends it.
func TestOwnerSeesAndEndsRTSPSessions(t *testing.T) {
	ffmpeg := testenv.Tool(t, "ffmpeg")
	d, _ := runningAt(t, rtspConfig(t))
	ownerToken := owner(t, d)
	key := streamKey(t, d, ownerToken, "nvr")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, ffmpeg, "-v", "error", "-rtsp_transport", "tcp",
		"-i", "rtsp://"+key.ID+":"+key.Secret+"@"+d.rtsp.Addr().String()+"/live", "-f", "null", "-")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	var list []api.Session
	testenv.Eventually(t, "the owner sees the RTSP session", func() bool {
		_, b := call(t, d, "GET", "/api/v1/sessions", ownerToken, nil)
		list = nil
		json.Unmarshal(b, &list)
		return len(list) == 1 && list[0].RTSP && list[0].User == "key:"+key.ID && list[0].Frames > 0
	})
	if code, b := call(t, d, "DELETE", "/api/v1/sessions/"+list[0].ID, ownerToken, nil); code != http.StatusNoContent {
		t.Fatalf("end: %d %s", code, b)
	}
	testenv.Eventually(t, "the session ended", func() bool { return len(d.rtsp.Stats().Sessions) == 0 })
	if code, _ := call(t, d, "DELETE", "/api/v1/sessions/"+list[0].ID, ownerToken, nil); code != http.StatusNotFound {
		t.Fatalf("ending it again: %d", code)
	}
}
