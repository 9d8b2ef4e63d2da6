package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// nvrCamera is a camera as `camctl cameras list --json` shows it.
type nvrCamera struct {
	ID, Name, Kind, State, Address string
	LastError                      string `json:"last_error"`
	Attempts                       uint64
}

// inviteCode makes a viewer invitation on d and returns its CAMD1 code.
func (d *daemon) inviteCode(t testing.TB) string {
	t.Helper()
	return d.invite(t, "CAMD1:")
}

// get is an HTTPS GET on d with its owner's credential.
func (d *daemon) get(t testing.TB, path string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", "https://"+d.addr+path, nil)
	req.Header.Set("Authorization", "Bearer "+d.token(t))
	resp, err := insecureClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (d *daemon) cameras(t testing.TB) map[string]nvrCamera {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := camctl(t, ctx, "cameras", "list", "--json", "--store", d.store)
	if err != nil {
		t.Fatal(err)
	}
	var list []nvrCamera
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	m := map[string]nvrCamera{}
	for _, c := range list {
		m[c.ID] = c
	}
	return m
}

// waitEvent polls the NVR's event log for an event of kind about camera.
func (d *daemon) waitEvent(t testing.TB, kind, camera string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		_, b := d.get(t, "/api/v1/events?type="+kind)
		if strings.Contains(string(b), `"camera": "`+camera+`"`) || strings.Contains(string(b), `"camera":"`+camera+`"`) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s event for %s within %s: %s", kind, camera, within, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// eventTime is the time of the latest event of kind for camera.
func (d *daemon) eventTime(t testing.TB, kind, camera string) time.Time {
	t.Helper()
	_, b := d.get(t, "/api/v1/events?type="+kind)
	var events []struct {
		Time   time.Time `json:"time"`
		Camera string    `json:"camera"`
	}
	if err := json.Unmarshal(b, &events); err != nil {
		t.Fatalf("events: %v: %s", err, b)
	}
	var last time.Time
	for _, e := range events {
		if e.Camera == camera && e.Time.After(last) {
			last = e.Time
		}
	}
	if last.IsZero() {
		t.Fatalf("no %s event for %s: %s", kind, camera, b)
	}
	return last
}

// exportDecodes exports the last minute of a camera from the NVR and
// has ffprobe decode it.
func (d *daemon) exportDecodes(t testing.TB, camera string) string {
	t.Helper()
	code, mp4 := d.get(t, "/api/v1/cameras/"+camera+"/recordings/export?from=-2m&to=now")
	if code != http.StatusOK {
		t.Fatalf("export of %s: %d %s", camera, code, mp4)
	}
	path := filepath.Join(t.TempDir(), camera+".mp4")
	os.WriteFile(path, mp4, 0o600)
	out := ffprobe(t, path, "-select_streams", "v:0", "-count_frames",
		"-show_entries", "stream=codec_name,width,height,nb_read_frames", "-of", "csv=p=0")
	if !strings.HasPrefix(strings.TrimSpace(out), "h264,") {
		t.Fatalf("export of %s: %q", camera, out)
	}
	return strings.TrimSpace(out)
}

// TestNVRRecordsCamdAndRTSPCameras: an NVR (camd with source: none) adds
// two camd cameras by the invitations their owners made and refuses a
// wrong code, adds a camera of another make (ffmpeg publishing to
// MediaMTX) by its RTSP URL, records each in its own stream and exports
// each as MP4 that ffprobe decodes. A camd camera killed is offline
// (event) within 10 s; started again at its address it is online and
// recorded again, the gap in its own timeline only.
func TestNVRRecordsCamdAndRTSPCameras(t *testing.T) {
	need(t, "ffmpeg", "ffprobe")
	mediamtx := interopTool(t, "mediamtx")
	small := writeConfig(t, "video: {width: 320, height: 240, fps: 15}\n")
	camA := startDaemon(t, "--config", small)
	camB := startDaemon(t, "--config", small)
	box := startDaemon(t, "--config", writeConfig(t, "source: none\n"))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// The other make: ffmpeg's test pattern, H.264, published to MediaMTX.
	dir := t.TempDir()
	port := freePort(t)
	startMediaMTX(t, mediamtx, dir, fmt.Sprintf("logLevel: info\napi: false\nrtmp: false\nhls: false\nwebrtc: false\nsrt: false\nmoq: false\nrtspAddress: 127.0.0.1:%d\npaths:\n  cam:\n", port))
	rtspURL := fmt.Sprintf("rtsp://127.0.0.1:%d/cam", port)
	ff := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=352x288:rate=15",
		"-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "15", "-pix_fmt", "yuv420p",
		"-f", "rtsp", "-rtsp_transport", "tcp", rtspURL)
	if err := ff.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ff.Process.Kill(); ff.Wait() })

	add := func(args ...string) nvrCamera {
		t.Helper()
		var out string
		var err error
		// The RTSP camera answers once ffmpeg publishes.
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			out, err = camctl(t, ctx, append(append([]string{"cameras"}, args...), "--store", box.store, "--json")...)
			if err == nil || time.Now().After(deadline) || !strings.Contains(err.Error(), "502") {
				break
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		var c nvrCamera
		json.Unmarshal([]byte(out), &c)
		return c
	}
	a := add("add", camA.inviteCode(t))
	b := add("add", camB.inviteCode(t))
	r := add("add-rtsp", rtspURL)

	// A code for camera B whose secret is wrong: refused, nothing added.
	wrong := []byte(camB.inviteCode(t))
	wrong[len(wrong)-3] ^= 1
	if out, err := camctl(t, ctx, "cameras", "add", "--store", box.store, string(wrong)); err == nil {
		t.Fatalf("a wrong code was taken: %s", out)
	}

	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		cs := box.cameras(t)
		if len(cs) != 3 {
			t.Fatalf("cameras: %+v", cs)
		}
		if cs[a.ID].State == "online" && cs[b.ID].State == "online" && cs[r.ID].State == "online" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not all online: %+v", cs)
		}
	}
	recorded := func(camera string) float64 {
		var tl struct {
			Recorded float64 `json:"recorded_s"`
			Gaps     []any   `json:"gaps"`
		}
		_, body := box.get(t, "/api/v1/cameras/"+camera+"/recordings?from=-2m")
		json.Unmarshal(body, &tl)
		return tl.Recorded
	}
	for deadline := time.Now().Add(60 * time.Second); recorded(a.ID) < 5 || recorded(b.ID) < 5 || recorded(r.ID) < 5; time.Sleep(250 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("recorded %.1f, %.1f, %.1f s", recorded(a.ID), recorded(b.ID), recorded(r.ID))
		}
	}
	for _, c := range []nvrCamera{a, b, r} {
		t.Logf("%s (%s): %s", c.ID, c.Kind, box.exportDecodes(t, c.ID))
	}

	// Camera A dies: offline within 10 s. Started again at its address,
	// it is online and recorded again.
	camA.cmd.Process.Signal(syscall.SIGKILL)
	<-camA.done
	killed := time.Now()
	// The event's time is when the NVR decided: within 10 s of the kill
	// (the wait for it to be readable is longer: a loaded machine).
	box.waitEvent(t, "camera.offline", a.ID, 30*time.Second)
	offline := box.eventTime(t, "camera.offline", a.ID).Sub(killed)
	if offline > 10*time.Second {
		t.Errorf("camera A went offline %s after the kill, want within 10 s", offline)
	}
	t.Logf("camera A offline after %s", offline.Round(time.Millisecond))
	before := recorded(a.ID)
	restarted := &daemon{t: t, data: camA.data, store: camA.store}
	restarted.start(t, exec.Command(filepath.Join(bin, "camd"), runArgs(camA.data, camA.addr, "--config", small)...), 30*time.Second)
	box.waitEvent(t, "camera.online", a.ID, 30*time.Second)
	for deadline := time.Now().Add(30 * time.Second); recorded(a.ID) < before+3; time.Sleep(250 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("camera A's recording did not resume: %.1f s, %.1f before", recorded(a.ID), before)
		}
	}
	// A gap of the kill's length between two spans: in A's timeline
	// only.
	longGaps := func(camera string) []string {
		var tl struct {
			Spans []struct{ Start, End time.Time } `json:"spans"`
		}
		_, body := box.get(t, "/api/v1/cameras/"+camera+"/recordings?from=-2m")
		json.Unmarshal(body, &tl)
		var out []string
		for i := 1; i < len(tl.Spans); i++ {
			if d := tl.Spans[i].Start.Sub(tl.Spans[i-1].End); d >= 3*time.Second {
				out = append(out, d.Round(100*time.Millisecond).String())
			}
		}
		return out
	}
	ga, gb, gr := longGaps(a.ID), longGaps(b.ID), longGaps(r.ID)
	t.Logf("gaps between recordings: A %v, B %v, RTSP %v", ga, gb, gr)
	if len(ga) != 1 || len(gb) != 0 || len(gr) != 0 {
		t.Errorf("the kill's gap should be in camera A's timeline only")
	}
	if box.cameras(t)[b.ID].State != "online" {
		t.Errorf("camera B went with A: %+v", box.cameras(t)[b.ID])
	}
}

// nvrPage is the web page's state on an NVR: the viewer's, and the
// cameras it lists.
type nvrPage struct {
	viewerState
	Cameras []string `json:"cameras"`
}

// TestChromiumWatchesNVRCamera: a browser paired with the NVR lists the
// NVR's camera, switches to it and decodes its live view, re-served by
// the NVR (the browser has no credential of the camera).
func TestChromiumWatchesNVRCamera(t *testing.T) {
	need(t, "chromium")
	cam := startDaemon(t, "--config", writeConfig(t, "video: {width: 320, height: 240, fps: 15}\n"))
	box := startDaemon(t, "--config", writeConfig(t, "source: none\n"))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := camctl(t, ctx, "cameras", "add", cam.inviteCode(t), "--name", "porch", "--store", box.store, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var c nvrCamera
	json.Unmarshal([]byte(out), &c)

	page := browser(t)
	if _, err := chromedp.Run(page, chromedp.Navigate(box.inviteLink(t))); err != nil {
		t.Fatal(err)
	}
	pollPage(t, page, `window.camd`, func(st nvrPage) bool { return len(st.Cameras) == 1 && st.Cameras[0] == c.ID })
	pick := fmt.Sprintf(`(() => { const s = document.getElementById("camera"); s.value = %q; s.dispatchEvent(new Event("change")); return true })()`, c.ID)
	if _, err := chromedp.Run(page, chromedp.Evaluate[bool](pick)); err != nil {
		t.Fatal(err)
	}
	st := pollPage(t, page, `window.camd`, func(st nvrPage) bool {
		return st.Watching == "camera:"+c.ID && st.FramesDecoded > 10 && st.TTFFMs > 0
	})
	if st.Width != 320 || st.Height != 240 {
		t.Errorf("decoded %dx%d, want the camera's 320x240", st.Width, st.Height)
	}
	t.Logf("Chromium through the NVR: first frame after %.0f ms, %d frames decoded", st.TTFFMs, st.FramesDecoded)
}
