package e2e

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/camd-project/camd/device/api"
	"github.com/camd-project/camd/discovery/lan"
	"github.com/camd-project/camd/discovery/netnstest"
	"github.com/camd-project/camd/discovery/wsd"
	"github.com/camd-project/camd/internal/testenv"
)

// nvrCamera is a camera as `camctl cameras list --json` shows it.
type nvrCamera struct {
	ID, Name, Kind, State, Address string
	LastError                      string `json:"last_error"`
	Attempts                       uint64
}

// nvrBox is an NVR as its owner reaches it: from namespace ns (""
// the host's) at addr (HOST:PORT), with the credential in store.
type nvrBox struct {
	*daemon
	ns, at string
}

// get is an HTTPS GET on the NVR with its owner's credential.
func (b *nvrBox) get(t testing.TB, path string) (int, []byte) {
	t.Helper()
	code, body, _ := b.getHeader(t, path)
	return code, body
}

// getHeader is get, with the answer's header.
func (b *nvrBox) getHeader(t testing.TB, path string) (int, []byte, http.Header) {
	t.Helper()
	req, _ := http.NewRequest("GET", "https://"+b.at+path, nil)
	req.Header.Set("Authorization", "Bearer "+b.token(t))
	c := insecureClient()
	if b.ns != "" {
		c = httpIn(b.ns)
	}
	c.Timeout = 30 * time.Second // an export of a minute
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body, resp.Header
}

// getJSON is get, its JSON answer decoded into out.
func (b *nvrBox) getJSON(t testing.TB, path string, out any) {
	t.Helper()
	code, body := b.get(t, path)
	if err := json.Unmarshal(body, out); err != nil {
		t.Fatalf("GET %s: %d: %v: %s", path, code, err, body)
	}
}

// camctl runs `camctl cameras ARGS` as the NVR's owner.
func (b *nvrBox) camctl(t testing.TB, ctx context.Context, args ...string) (string, error) {
	t.Helper()
	out, err := camctlIn(t, ctx, b.ns, append(append([]string{"cameras"}, args...), "--store", b.store)...)
	if ee, ok := err.(*exec.ExitError); ok {
		err = fmt.Errorf("%w: %s", err, ee.Stderr)
	}
	return out, err
}

// add adds a camera with `camctl cameras ARGS --json`.
func (b *nvrBox) add(t testing.TB, ctx context.Context, args ...string) nvrCamera {
	t.Helper()
	out, err := b.camctl(t, ctx, append(args, "--json")...)
	if err != nil {
		t.Fatalf("camctl cameras %s: %v\n%s", args[0], err, out)
	}
	var c nvrCamera
	if err := json.Unmarshal([]byte(out), &c); err != nil || c.ID == "" {
		t.Fatalf("camctl cameras %s: %v: %s", args[0], err, out)
	}
	return c
}

// addRTSP adds the camera at url with `camctl cameras add-rtsp`, again
// while it does not answer (until ffmpeg publishes), for at most 30 s.
func (b *nvrBox) addRTSP(t testing.TB, ctx context.Context, url string) nvrCamera {
	t.Helper()
	var c nvrCamera
	for deadline := time.Now().Add(30 * time.Second); c.ID == ""; time.Sleep(200 * time.Millisecond) {
		out, err := b.camctl(t, ctx, "add-rtsp", url, "--json")
		if err != nil && strings.Contains(err.Error(), "502") && time.Now().Before(deadline) {
			continue
		}
		if err != nil {
			t.Fatalf("camctl cameras add-rtsp: %v\n%s", err, out)
		}
		json.Unmarshal([]byte(out), &c)
	}
	return c
}

func (b *nvrBox) cameras(t testing.TB) map[string]nvrCamera {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := b.camctl(t, ctx, "list", "--json")
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

// discovered asks the NVR for the cameras on its LAN, a search at a
// time, until ok accepts the list, for at most 30 s.
func (b *nvrBox) discovered(t testing.TB, ok func([]lan.Camera) bool) []lan.Camera {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		out, err := b.camctl(t, ctx, "discovered", "--json")
		cancel()
		if err != nil {
			t.Fatalf("camctl cameras discovered: %v\n%s", err, out)
		}
		var ans api.DiscoveredAnswer
		if err := json.Unmarshal([]byte(out), &ans); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		if ok(ans.Cameras) || time.Now().After(deadline) {
			t.Logf("NVR listed (%d ms, on %v): %s", ans.WindowMs, ans.Interfaces, out)
			return ans.Cameras
		}
	}
}

// timeline is a camera's timeline from from (RFC 3339 or relative).
func (b *nvrBox) timeline(t testing.TB, camera, from string) timelineAnswer {
	t.Helper()
	var tl timelineAnswer
	b.getJSON(t, "/api/v1/cameras/"+camera+"/recordings?from="+url.QueryEscape(from), &tl)
	return tl
}

// waitEvent polls the NVR's event log for an event of kind about camera.
func (b *nvrBox) waitEvent(t testing.TB, kind, camera string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		_, body := b.get(t, "/api/v1/events?type="+kind)
		if strings.Contains(string(body), `"camera": "`+camera+`"`) || strings.Contains(string(body), `"camera":"`+camera+`"`) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s event for %s within %s: %s", kind, camera, within, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// eventTime is the time of the latest event of kind for camera.
func (b *nvrBox) eventTime(t testing.TB, kind, camera string) time.Time {
	t.Helper()
	var events []struct {
		Time   time.Time `json:"time"`
		Camera string    `json:"camera"`
	}
	b.getJSON(t, "/api/v1/events?type="+kind, &events)
	var last time.Time
	for _, e := range events {
		if e.Camera == camera && e.Time.After(last) {
			last = e.Time
		}
	}
	if last.IsZero() {
		t.Fatalf("no %s event for %s", kind, camera)
	}
	return last
}

// export exports a camera's recordings from from to to as MP4, has
// ffprobe decode every frame of it, and returns its codec, size, frames
// and duration, and the stretch of time the NVR says it covers
// (X-Camd-Start, X-Camd-End: from the keyframe at or before from to the
// end of the fragment that holds to).
func (b *nvrBox) export(t testing.TB, camera string, from, to time.Time) (codec string, width, height, frames int, seconds float64, covers time.Duration) {
	t.Helper()
	q := url.Values{"from": {from.Format(time.RFC3339Nano)}, "to": {to.Format(time.RFC3339Nano)}}
	code, mp4, h := b.getHeader(t, "/api/v1/cameras/"+camera+"/recordings/export?"+q.Encode())
	if code != http.StatusOK {
		t.Fatalf("export of %s: %d %s", camera, code, mp4)
	}
	start, err1 := time.Parse(time.RFC3339Nano, h.Get("X-Camd-Start"))
	end, err2 := time.Parse(time.RFC3339Nano, h.Get("X-Camd-End"))
	if err1 != nil || err2 != nil {
		t.Fatalf("export of %s: the stretch it covers: %v %v", camera, err1, err2)
	}
	path := filepath.Join(t.TempDir(), camera+".mp4")
	if err := os.WriteFile(path, mp4, 0o600); err != nil {
		t.Fatal(err)
	}
	out := ffprobe(t, path, "-select_streams", "v:0", "-count_frames",
		"-show_entries", "stream=codec_name,width,height,nb_read_frames:format=duration", "-of", "csv=p=0")
	lines := strings.Fields(out)
	if len(lines) != 2 {
		t.Fatalf("ffprobe of %s's export: %q", camera, out)
	}
	f := strings.Split(lines[0], ",")
	if len(f) != 4 {
		t.Fatalf("ffprobe of %s's export: %q", camera, out)
	}
	width, _ = strconv.Atoi(f[1])
	height, _ = strconv.Atoi(f[2])
	frames, _ = strconv.Atoi(f[3])
	seconds, _ = strconv.ParseFloat(lines[1], 64)
	return f[0], width, height, frames, seconds, end.Sub(start)
}

// TestNVRRecordsCamdAndRTSPCameras is NVR mode on a simulated LAN: an
// NVR (camd with source: none), three camd cameras, a camera of another
// make (ffmpeg publishing to MediaMTX, answering WS-Discovery) and the
// owner's phone (camctl, then headless Chromium), each host in a network
// namespace of its own on one switch.
//
// The NVR lists the four cameras as discovered; the owner adds two camd
// cameras by the invitations their owners made, a third camd camera's
// code with a wrong secret is refused (it stays discovered, nothing is
// added), the other make by its RTSP URL. The NVR records each for a
// minute in its own stream, while Chromium on the phone lists the three
// and decodes each one's live view through the NVR (the phone has no
// credential of the cameras); each minute exported is an MP4 ffprobe
// decodes, within 1.5 s of the minute. A camd camera killed is offline
// (event) within 10 s; started again at its address it is online and
// recorded again, the gap in its own timeline only.
func TestNVRRecordsCamdAndRTSPCameras(t *testing.T) {
	netnstest.Need(t, "ffmpeg", "ffprobe", "chromium")
	mediamtx := testenv.Interop(t, "mediamtx")
	n := newLAN(t, "nvr", "cam1", "cam2", "cam3", "porch", "phone")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// The camd cameras, each paired with its owner (camctl on the
	// camera's own host).
	type camdCam struct {
		d      *daemon
		host   string
		config string
		owner  string // the owner's camctl store
	}
	var cams []*camdCam
	for i, h := range []string{"cam1", "cam2", "cam3"} {
		c := &camdCam{d: &daemon{t: t, data: t.TempDir()}, host: h,
			config: writeConfig(t, fmt.Sprintf("name: Camera %d\nvideo: {width: 320, height: 240, fps: 15}\n", i+1))}
		c.d.start(t, netnstest.Command(n.ns[h], filepath.Join(bin, "camd"), runArgs(c.d.data, n.addr[h]+":0", "--config", c.config)...), 30*time.Second)
		cams = append(cams, c)
	}
	nvrd := startInNetns(t, n.ns["nvr"], "--config", writeConfig(t, "name: NVR\nsource: none\n"))

	// The other make: ffmpeg's test pattern, H.264, published to MediaMTX
	// on the porch host, which answers WS-Discovery probes as an ONVIF
	// camera.
	porchNS, porchAddr := n.ns["porch"], n.addr["porch"]
	wrapper := filepath.Join(t.TempDir(), "mediamtx")
	if err := os.WriteFile(wrapper, []byte("#!/bin/sh\nexec ip netns exec "+porchNS+" "+mediamtx+" \"$@\"\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	startMediaMTX(t, wrapper, t.TempDir(), "logLevel: info\napi: false\nrtmp: false\nhls: false\nwebrtc: false\nsrt: false\nmoq: false\nrtspTransports: [tcp]\nrtspAddress: :8554\npaths:\n  cam:\n")
	rtspURL := "rtsp://" + porchAddr + ":8554/cam"
	ff := exec.CommandContext(ctx, "ip", "netns", "exec", porchNS, "ffmpeg", "-hide_banner", "-loglevel", "error", "-re",
		"-f", "lavfi", "-i", "testsrc=size=352x288:rate=15",
		"-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "15", "-pix_fmt", "yuv420p",
		"-f", "rtsp", "-rtsp_transport", "tcp", "rtsp://127.0.0.1:8554/cam")
	if err := ff.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ff.Process.Kill(); ff.Wait() })
	porch := "urn:uuid:0a0b0c0d-0000-4000-8000-0000000a11ce"
	var r *wsd.Responder
	if err := netnstest.Do(porchNS, func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		r, err = wsd.Listen(wsd.Options{Interfaces: []net.Interface{*ifi}, Target: func(int, bool) wsd.Target {
			return wsd.Target{Endpoint: porch, Types: []xml.Name{wsd.NetworkVideoTransmitter},
				Scopes: []string{wsd.ScopeName + "Porch%20Cam", wsd.ScopeHardware + "IPC-G5"},
				XAddrs: []string{"http://" + porchAddr + ":8000/onvif/device_service"}, MetadataVersion: 1}
		}})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	// The owners pair their cameras; the NVR's owner pairs the NVR from
	// the phone.
	for _, c := range cams {
		c.owner = pairIn(t, n.ns[c.host], c.d, net.JoinHostPort(n.addr[c.host], c.d.port(t)))
	}
	nvrd.store = pairIn(t, n.ns["phone"], nvrd, net.JoinHostPort(n.addr["nvr"], nvrd.port(t)))
	box := &nvrBox{daemon: nvrd, ns: n.ns["phone"], at: net.JoinHostPort(n.addr["nvr"], nvrd.port(t))}

	// The NVR finds the four cameras, the camd ones by their device IDs
	// (mDNS and WS-Discovery), the other by its endpoint; not itself.
	ids := make([]string, len(cams))
	for i, c := range cams {
		waitLog(t, c.d, "discovery: answering WS-Discovery probes")
		ids[i] = c.d.deviceID(t)
	}
	has := func(cs []lan.Camera, id string) bool {
		return slices.ContainsFunc(cs, func(c lan.Camera) bool { return c.ID == id || c.Endpoint == id })
	}
	found := box.discovered(t, func(cs []lan.Camera) bool {
		return has(cs, ids[0]) && has(cs, ids[1]) && has(cs, ids[2]) && has(cs, porch)
	})
	if len(found) != 4 || !has(found, ids[0]) || !has(found, ids[1]) || !has(found, ids[2]) || !has(found, porch) {
		t.Fatalf("the NVR found %+v; want the three camd cameras and the porch camera", found)
	}
	for _, c := range found {
		if c.Kind == lan.Camd && (c.Paired == nil || !*c.Paired || !strings.HasPrefix(c.Name, "Camera ")) {
			t.Errorf("camd camera listed as %+v; want its name, paired", c)
		}
	}

	// Two camd cameras added by their owners' invitations; the third's
	// code with a wrong secret is refused; the porch camera by its URL
	// (it answers once ffmpeg publishes).
	a := box.add(t, ctx, "add", invitation(t, n.ns["cam1"], cams[0].owner, "CAMD1:"))
	b := box.add(t, ctx, "add", invitation(t, n.ns["cam2"], cams[1].owner, "CAMD1:"))
	wrong := []byte(invitation(t, n.ns["cam3"], cams[2].owner, "CAMD1:"))
	wrong[len(wrong)-3] ^= 1
	if out, err := box.camctl(t, ctx, "add", string(wrong)); err == nil {
		t.Fatalf("a wrong code was taken: %s", out)
	}
	p := box.addRTSP(t, ctx, rtspURL)
	added := []nvrCamera{a, b, p}
	// What is left discovered: the refused camera alone.
	left := box.discovered(t, func(cs []lan.Camera) bool { return len(cs) == 1 && cs[0].ID == ids[2] })
	if len(left) != 1 || left[0].ID != ids[2] {
		t.Errorf("after the adds, the NVR lists %+v; want Camera 3 alone (its code was refused)", left)
	}

	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		cs := box.cameras(t)
		if len(cs) != 3 {
			t.Fatalf("cameras: %+v", cs)
		}
		if cs[a.ID].State == "online" && cs[b.ID].State == "online" && cs[p.ID].State == "online" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not all online: %+v", cs)
		}
	}
	// The minute each camera is recorded for: it starts once all are
	// online (each has recorded since its first keyframe).
	from := time.Now()
	to := from.Add(time.Minute)

	// Meanwhile the phone's browser, paired with the NVR by an invitation
	// link, lists the three cameras and decodes each one's live view,
	// through the NVR.
	page := browserIn(t, n.ns["phone"])
	if _, err := chromedp.Run(page, chromedp.Navigate(invitation(t, box.ns, box.store, "https://"))); err != nil {
		t.Fatal(err)
	}
	want := []string{a.ID, b.ID, p.ID} // by stream number
	pollPage(t, page, `window.camd`, func(st nvrPage) bool { return slices.Equal(st.Cameras, want) })
	for _, c := range added {
		pick := fmt.Sprintf(`(() => { const s = document.getElementById("camera"); s.value = %q; s.dispatchEvent(new Event("change")); return true })()`, c.ID)
		if _, err := chromedp.Run(page, chromedp.Evaluate[bool](pick)); err != nil {
			t.Fatal(err)
		}
		st := pollPage(t, page, `window.camd`, func(st nvrPage) bool {
			return st.Watching == "camera:"+c.ID && st.FramesDecoded > 10 && st.TTFFMs > 0
		})
		w, h := 320, 240
		if c.Kind == "rtsp" {
			w, h = 352, 288
		}
		if st.Width != w || st.Height != h {
			t.Errorf("%s (%s): Chromium decoded %dx%d, want %dx%d", c.ID, c.Kind, st.Width, st.Height, w, h)
		}
		t.Logf("Chromium through the NVR, %s (%s): first frame after %.0f ms, %d frames decoded", c.ID, c.Kind, st.TTFFMs, st.FramesDecoded)
	}

	// The minute is over once each camera's recordings reach past it.
	for _, c := range added {
		for deadline := to.Add(30 * time.Second); ; time.Sleep(250 * time.Millisecond) {
			tl := box.timeline(t, c.ID, from.Format(time.RFC3339Nano))
			if len(tl.Spans) > 0 && !tl.Spans[len(tl.Spans)-1].End.Before(to) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s was not recorded up to %s: %+v", c.ID, to, tl)
			}
		}
	}
	// Each minute exported: the MP4 decodes, and lasts the stretch of
	// recordings it covers (from the keyframe at or before the minute to
	// the end of the fragment that holds its end) within 1.5 s; the
	// timeline has at least 55 s of the minute (the ffmpeg camera's
	// recording had a gap of 2.5-2.8 s in some runs on a loaded machine,
	// docs/nvr.md).
	for _, c := range added {
		var tl timelineAnswer
		box.getJSON(t, "/api/v1/cameras/"+c.ID+"/recordings?"+url.Values{"from": {from.Format(time.RFC3339Nano)}, "to": {to.Format(time.RFC3339Nano)}}.Encode(), &tl)
		codec, w, h, frames, secs, covers := box.export(t, c.ID, from, to)
		t.Logf("%s (%s): exported %s %dx%d, %d frames, %.2f s covering %.2f s; the timeline: %.2f s of the minute recorded, in %d spans", c.ID, c.Kind, codec, w, h, frames, secs, covers.Seconds(), tl.Recorded, len(tl.Spans))
		if codec != "h264" || frames == 0 {
			t.Errorf("%s's export: %s, %d frames", c.ID, codec, frames)
		}
		if tl.Recorded < to.Sub(from).Seconds()-5 {
			t.Errorf("%s: %.2f s of the minute recorded", c.ID, tl.Recorded)
		}
		if covers < to.Sub(from) || math.Abs(secs-covers.Seconds()) > 1.5 {
			t.Errorf("%s: the export is %.2f s long and covers %.2f s; want the minute, within 1.5 s", c.ID, secs, covers.Seconds())
		}
	}

	// Camera 1 dies: offline within 10 s. Started again at its address,
	// it is online and recorded again.
	cam := cams[0]
	cam.d.cmd.Process.Signal(syscall.SIGKILL)
	<-cam.d.done
	killed := time.Now()
	// The event's time is when the NVR decided: within 10 s of the kill
	// (the wait for it to be readable is longer: a loaded machine).
	box.waitEvent(t, "camera.offline", a.ID, 30*time.Second)
	offline := box.eventTime(t, "camera.offline", a.ID).Sub(killed)
	if offline > 10*time.Second {
		t.Errorf("camera 1 went offline %s after the kill, want within 10 s", offline)
	}
	t.Logf("camera 1 offline after %s", offline.Round(time.Millisecond))
	before := box.timeline(t, a.ID, "-5m").Recorded
	restarted := &daemon{t: t, data: cam.d.data, store: cam.owner}
	restarted.start(t, netnstest.Command(n.ns[cam.host], filepath.Join(bin, "camd"), runArgs(cam.d.data, cam.d.addr, "--config", cam.config)...), 30*time.Second)
	box.waitEvent(t, "camera.online", a.ID, 30*time.Second)
	for deadline := time.Now().Add(30 * time.Second); box.timeline(t, a.ID, "-5m").Recorded < before+3; time.Sleep(250 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("camera 1's recording did not resume: %.1f s, %.1f before", box.timeline(t, a.ID, "-5m").Recorded, before)
		}
	}
	// A gap of the kill's length between two spans: in camera 1's
	// timeline only.
	longGaps := func(camera string) []string {
		tl := box.timeline(t, camera, "-5m")
		var out []string
		for i := 1; i < len(tl.Spans); i++ {
			if d := tl.Spans[i].Start.Sub(tl.Spans[i-1].End); d >= 3*time.Second {
				out = append(out, d.Round(100*time.Millisecond).String())
			}
		}
		return out
	}
	ga, gb, gp := longGaps(a.ID), longGaps(b.ID), longGaps(p.ID)
	t.Logf("gaps between recordings: camera 1 %v, camera 2 %v, porch %v", ga, gb, gp)
	if len(ga) != 1 || len(gb) != 0 || len(gp) != 0 {
		t.Errorf("the kill's gap should be in camera 1's timeline only")
	}
	if st := box.cameras(t)[b.ID].State; st != "online" {
		t.Errorf("camera 2 went with camera 1: %s", st)
	}
}

// TestNVRRefusesRTSPBFrames: a camera of another make whose H.264 has
// B-frames (ffmpeg -bf 2, main profile, publishing to MediaMTX) is
// offline with an error that says so, and an event (the recording
// format and WebRTC take pictures in the order they are shown;
// docs/nvr.md, "B-frames").
func TestNVRRefusesRTSPBFrames(t *testing.T) {
	need(t, "ffmpeg")
	mediamtx := testenv.Interop(t, "mediamtx")
	box := &nvrBox{daemon: startDaemon(t, "--config", writeConfig(t, "source: none\n"))}
	box.at = box.addr
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	port := freePort(t)
	startMediaMTX(t, mediamtx, t.TempDir(), fmt.Sprintf("logLevel: info\napi: false\nrtmp: false\nhls: false\nwebrtc: false\nsrt: false\nmoq: false\nrtspTransports: [tcp]\nrtspAddress: 127.0.0.1:%d\npaths:\n  cam:\n", port))
	rtspURL := fmt.Sprintf("rtsp://127.0.0.1:%d/cam", port)
	ff := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=352x288:rate=15",
		"-c:v", "libx264", "-preset", "ultrafast", "-profile:v", "main", "-bf", "2", "-g", "15", "-pix_fmt", "yuv420p",
		"-f", "rtsp", "-rtsp_transport", "tcp", rtspURL)
	if err := ff.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ff.Process.Kill(); ff.Wait() })
	c := box.addRTSP(t, ctx, rtspURL)
	box.waitEvent(t, "camera.offline", c.ID, 30*time.Second)
	got := box.cameras(t)[c.ID]
	if got.State != "offline" || !strings.Contains(got.LastError, "B-frames") {
		t.Fatalf("a camera sending B-frames: %+v", got)
	}
	t.Logf("%s: %s", got.State, got.LastError)
}

// nvrPage is the web page's state on an NVR: the viewer's, and the
// cameras it lists.
type nvrPage struct {
	viewerState
	Cameras []string `json:"cameras"`
}

// testLAN is a simulated LAN: a network namespace per host, each with an
// eth0 plugged into one bridge (the switch, in a namespace of its own),
// IPv4 addresses 10.77.0.10 and up in the order the hosts were named.
// Nothing runs on the host's own interfaces.
type testLAN struct {
	ns   map[string]string // host → its namespace
	addr map[string]string // host → its IPv4 address
}

var lanSeq atomic.Uint32

// newLAN creates the hosts' namespaces and the switch, and deletes them
// in t.Cleanup.
func newLAN(t testing.TB, hosts ...string) *testLAN {
	t.Helper()
	netnstest.Need(t)
	prefix := fmt.Sprintf("camdl-%d-%d-", os.Getpid(), lanSeq.Add(1))
	sw := prefix + "sw"
	n := &testLAN{ns: map[string]string{}, addr: map[string]string{}}
	all := []string{sw}
	t.Cleanup(func() {
		for _, ns := range all {
			exec.Command("ip", "netns", "delete", ns).Run()
		}
	})
	steps := [][]string{
		{"netns", "add", sw},
		{"-n", sw, "link", "set", "lo", "up"},
		// Multicast (mDNS, WS-Discovery) to every port, as a plain switch.
		{"-n", sw, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0"},
		{"-n", sw, "link", "set", "br0", "up"},
	}
	for i, h := range hosts {
		ns, port := prefix+h, fmt.Sprintf("p%d", i)
		n.ns[h], n.addr[h] = ns, fmt.Sprintf("10.77.0.%d", 10+i)
		all = append(all, ns)
		steps = append(steps,
			[]string{"netns", "add", ns},
			[]string{"netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"},
			[]string{"-n", ns, "link", "set", "lo", "up"},
			[]string{"-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", port, "netns", sw},
			[]string{"-n", ns, "addr", "add", n.addr[h] + "/24", "dev", "eth0"},
			[]string{"-n", ns, "addr", "add", fmt.Sprintf("fd00:77::%d/64", 10+i), "dev", "eth0", "nodad"},
			[]string{"-n", ns, "link", "set", "eth0", "up"},
			[]string{"-n", sw, "link", "set", port, "master", "br0"},
			[]string{"-n", sw, "link", "set", port, "up"},
			// Multicast in a fresh namespace needs a route.
			[]string{"-n", ns, "route", "add", "default", "dev", "eth0"},
		)
	}
	for _, s := range steps {
		if out, err := exec.Command("ip", s...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(s, " "), err, out)
		}
	}
	return n
}

// browserIn starts headless Chromium (as browser does) inside namespace
// ns: chromedp drives it over the pipe it inherits, and the pages it
// opens reach only what ns reaches.
func browserIn(t testing.TB, ns string) context.Context {
	t.Helper()
	ip, err := exec.LookPath("ip")
	if err != nil {
		t.Fatal(err)
	}
	return browserWith(t, chromedp.Flag("ignore-certificate-errors", true), chromedp.ModifyCmdFunc(func(cmd *exec.Cmd) {
		cmd.Path, cmd.Args = ip, append([]string{"ip", "netns", "exec", ns}, cmd.Args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	}))
}

// invitation makes a viewer invitation with camctl in namespace ns, as
// the owner whose credentials are in store, and returns the line of its
// answer that starts with prefix (the link, or the CAMD1 code).
func invitation(t testing.TB, ns, store, prefix string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := camctlIn(t, ctx, ns, "users", "invite", "--store", store)
	if err != nil {
		t.Fatalf("camctl users invite: %v\n%s", err, out)
	}
	for _, l := range strings.Split(out, "\n") {
		if l = strings.TrimSpace(l); strings.HasPrefix(l, prefix) {
			return l
		}
	}
	t.Fatalf("no %s line in:\n%s", prefix, out)
	return ""
}
