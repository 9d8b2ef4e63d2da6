package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// nvrClient talks to an NVR over one kept-alive connection, so that
// polling it costs the NVR no TLS handshake each time.
type nvrClient struct {
	box    *daemon
	client *http.Client
	token  string
}

func newNVRClient(b testing.TB, box *daemon) *nvrClient {
	return &nvrClient{box: box, client: insecureClient(), token: box.token(b)}
}

func (c *nvrClient) do(b testing.TB, method, path string, body, out any) int {
	b.Helper()
	var rd *bytes.Reader
	if body != nil {
		j, _ := json.Marshal(body)
		rd = bytes.NewReader(j)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, _ := http.NewRequest(method, "https://"+c.box.addr+path, rd)
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

// cameraMetrics are one camera's counters in the NVR's /metrics.
type cameraMetrics struct{ frames, fragments, dropped float64 }

func (c *nvrClient) metrics(b testing.TB) map[string]cameraMetrics {
	b.Helper()
	req, _ := http.NewRequest("GET", "https://"+c.box.addr+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]cameraMetrics{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), `{camera="`)
		if !ok {
			continue
		}
		id, value, ok := strings.Cut(rest, `"} `)
		if !ok {
			continue
		}
		v, _ := strconv.ParseFloat(value, 64)
		m := out[id]
		switch name {
		case "camd_nvr_camera_frames_total":
			m.frames = v
		case "camd_nvr_camera_fragments_total":
			m.fragments = v
		case "camd_nvr_camera_fragments_dropped_total":
			m.dropped = v
		}
		out[id] = m
	}
	return out
}

// selfCPU is the CPU time this process used.
func selfCPU(b *testing.B) time.Duration {
	_, cpu := procStat(b, os.Getpid())
	return cpu
}

// BenchmarkNVRCameras records N RTSP test cameras of 720p30 2 Mbps
// H.264 (loopCameras: a looped file, keyframe every 2 s, in this
// process) at once on an NVR (camd with source: none, in its own
// process) and reports, over a 30 s window: frames the cameras sent and
// the NVR did not get, fragments dropped and gaps in the cameras'
// timelines (all 0 when every camera is recorded whole); the NVR's CPU
// and RSS per camera (against the NVR before any camera was added); the
// bytes the NVR made the kernel write to storage per H.264 byte the
// cameras sent; the time from a camera's add (POST) to its first
// recorded fragment; and the time from a restarted camera's first
// packet to its next recorded fragment.
func BenchmarkNVRCameras(b *testing.B) {
	for _, n := range []int{16, 32, 64} {
		b.Run(fmt.Sprintf("cameras=%d", n), func(b *testing.B) {
			for range b.N {
				nvrCameras(b, n, 30*time.Second)
			}
		})
	}
}

// resumed tells whether the camera's timeline holds a recording that
// starts after since (what the NVR recorded before it ended earlier).
func resumed(b *testing.B, c *nvrClient, id string, since time.Time) bool {
	var tl timelineAnswer
	c.do(b, "GET", "/api/v1/cameras/"+id+"/recordings?from="+since.Add(-time.Second).UTC().Format(time.RFC3339Nano), nil, &tl)
	for _, s := range tl.Spans {
		if !s.Start.Before(since) {
			return true
		}
	}
	return false
}

func nvrCameras(b *testing.B, n int, window time.Duration) {
	need(b, "ffmpeg")
	const fps = 30
	file := fixture(b, benchDir(b), "1280x720", fps, 20, 2*fps, "2M", "high")
	cams := startLoopCameras(b, file, fps, n, nil)
	box := startDaemon(b, "--config", writeConfig(b, "source: none\nnvr: {max_cameras: 64}\n"))
	pid := box.cmd.Process.Pid
	c := newNVRClient(b, box)
	idleCPU, idleRSS := busyOver(b, pid, 5*time.Second)

	// Add the cameras one after the other; each add's time to its first
	// fragment.
	ids := make([]string, n)
	added := map[string]time.Time{}
	for i := range n {
		var cam nvrCamera
		at := time.Now()
		if code := c.do(b, "POST", "/api/v1/cameras", map[string]string{"rtsp": cams.url(i), "name": fmt.Sprintf("cam %d", i)}, &cam); code != http.StatusCreated {
			b.Fatalf("adding camera %d: %d", i, code)
		}
		ids[i], added[cam.ID] = cam.ID, at
	}
	var toFragment []float64
	for deadline := time.Now().Add(60 * time.Second); len(added) > 0; time.Sleep(50 * time.Millisecond) {
		now := time.Now()
		for id, m := range c.metrics(b) {
			if at, ok := added[id]; ok && m.fragments > 0 {
				toFragment = append(toFragment, float64(now.Sub(at).Milliseconds()))
				delete(added, id)
			}
		}
		if now.After(deadline) {
			b.Fatalf("%d cameras without a fragment after 60 s", len(added))
		}
	}

	// The window: every camera recorded at once, after 5 s for the
	// fragments the adds queued to reach the disk.
	time.Sleep(5 * time.Second)
	var st0, st1 recStatus
	c.do(b, "GET", "/api/v1/recordings/status", nil, &st0)
	sent0 := cams.bytesSent()
	w0 := writeBytes(b, pid)
	self0 := selfCPU(b)
	cpu, rss := busyOver(b, pid, window)
	self1 := selfCPU(b)
	w1 := writeBytes(b, pid)
	sent1 := cams.bytesSent()
	c.do(b, "GET", "/api/v1/recordings/status", nil, &st1)

	// Frames lost: the cameras pause; once the NVR has all it will get,
	// what they sent against what it received.
	cams.pause(true)
	var got map[string]cameraMetrics
	for prev, stable := -1.0, 0; stable < 3; time.Sleep(200 * time.Millisecond) {
		got = c.metrics(b)
		total := 0.0
		for _, m := range got {
			total += m.frames
		}
		if total == prev {
			stable++
		} else {
			prev, stable = total, 0
		}
	}
	lost, dropped, gaps := 0.0, 0.0, 0
	for i, id := range ids {
		lost += float64(cams.cams[i].frames.Load()) - got[id].frames
		dropped += got[id].dropped
		var tl timelineAnswer
		c.do(b, "GET", "/api/v1/cameras/"+id+"/recordings?from=-10m", nil, &tl)
		for j := 1; j < len(tl.Spans); j++ {
			if tl.Spans[j].Start.Sub(tl.Spans[j-1].End) > 100*time.Millisecond {
				gaps++
			}
		}
	}
	cams.pause(false)

	// Restarts: a camera goes down, the NVR sees it offline, it comes
	// back; from its first packet to the NVR's next fragment of it.
	var toResume []float64
	for i := range min(n, 3) {
		id := ids[i]
		cams.Down(i)
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			var cam nvrCamera
			c.do(b, "GET", "/api/v1/cameras/"+id, nil, &cam)
			if cam.State == "offline" {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("camera %s not offline: %+v", id, cam)
			}
		}
		cams.Up(i)
		var first time.Time
		for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if first.IsZero() {
				first = cams.FirstPacket(i)
			} else if resumed(b, c, id, first) {
				toResume = append(toResume, float64(time.Since(first).Milliseconds()))
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("camera %s not recorded again (first packet at %v)", id, first)
			}
		}
	}

	media := float64(sent1 - sent0)
	b.ReportMetric(float64(n), "cameras")
	b.ReportMetric(lost, "frames_lost")
	b.ReportMetric(dropped, "fragments_dropped")
	b.ReportMetric(float64(gaps), "timeline_gaps")
	b.ReportMetric((cpu-idleCPU)*100/float64(n), "cpu_%/camera")
	b.ReportMetric(float64(rss-idleRSS)/float64(n)/1e6, "rss_MB/camera")
	b.ReportMetric(cpu*100, "nvr_cpu_%")
	b.ReportMetric(float64(rss)/1e6, "nvr_rss_MB")
	b.ReportMetric(idleCPU*100, "idle_cpu_%")
	b.ReportMetric(float64(idleRSS)/1e6, "idle_rss_MB")
	b.ReportMetric(float64(w1-w0)/media, "disk/media")
	b.ReportMetric(float64(st1.Written-st0.Written)/media, "stored/media")
	b.ReportMetric(media*8/window.Seconds()/1e6/float64(n), "Mbps/camera")
	b.ReportMetric(float64(self1-self0)*100/float64(window), "sources_cpu_%")
	b.ReportMetric(percentile(toFragment, 0.5), "add_to_fragment_ms_p50")
	b.ReportMetric(percentile(toFragment, 1), "add_to_fragment_ms_max")
	b.ReportMetric(percentile(toResume, 0.5), "restart_to_fragment_ms_p50")
	b.ReportMetric(percentile(toResume, 1), "restart_to_fragment_ms_max")
	b.ReportMetric(0, "ns/op")
}
