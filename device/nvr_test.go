package device

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/camd-project/camd/device/api"
	"github.com/camd-project/camd/device/pairing"
	"github.com/camd-project/camd/internal/testenv"
	"github.com/camd-project/camd/media/whep"
	"github.com/camd-project/camd/nvr"
	"github.com/camd-project/camd/storage/recordings"
)

// nvrConfig is an NVR with no lens.
func nvrConfig(t *testing.T) Config {
	c := testConfig(t)
	c.Source = "none"
	return c
}

// invitation makes a viewer invitation on d: the code its owner gives
// the NVR.
func invitation(t *testing.T, d *Daemon, ownerToken string) string {
	t.Helper()
	code, b := call(t, d, "POST", "/api/v1/users/invite", ownerToken, api.InviteRequest{Role: pairing.Viewer})
	var inv struct {
		Payload string `json:"payload"`
	}
	if code != http.StatusOK || json.Unmarshal(b, &inv) != nil {
		t.Fatalf("invite: %d %s", code, b)
	}
	return inv.Payload
}

// waitCamera polls the NVR's camera until cond holds.
func waitCamera(t *testing.T, d *Daemon, token, id string, cond func(nvr.Camera) bool) nvr.Camera {
	t.Helper()
	var c nvr.Camera
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		code, b := call(t, d, "GET", "/api/v1/cameras/"+id, token, nil)
		c = nvr.Camera{}
		json.Unmarshal(b, &c)
		if code == http.StatusOK && cond(c) {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("camera %s: %d %+v", id, code, c)
		}
	}
}

// An NVR (source: none) adds a camd camera by its invitation code,
// records it, serves its live view, timeline, export and snapshot under
// /api/v1/cameras/{camera}/, and keeps its recordings when it is
// removed.
func TestNVRRecordsACamdCamera(t *testing.T) {
	ffprobe := testenv.Tool(t, "ffprobe")
	cam, _ := runningAt(t, testConfig(t))
	camOwner := owner(t, cam)
	box, _ := runningAt(t, nvrConfig(t))
	ownerToken := owner(t, box)
	viewerToken := viewer(t, box, ownerToken)

	code, b := call(t, box, "POST", "/api/v1/cameras", viewerToken, nvr.AddRequest{Code: invitation(t, cam, camOwner)})
	if code != http.StatusForbidden {
		t.Fatalf("a viewer adds a camera: %d %s", code, b)
	}
	code, b = call(t, box, "POST", "/api/v1/cameras", ownerToken, nvr.AddRequest{Code: invitation(t, cam, camOwner), Name: "porch"})
	var c nvr.Camera
	if code != http.StatusCreated || json.Unmarshal(b, &c) != nil || c.ID == "" {
		t.Fatalf("add: %d %s", code, b)
	}
	if strings.Contains(string(b), "token") {
		t.Fatalf("the answer shows a credential: %s", b)
	}
	code, b = call(t, box, "POST", "/api/v1/cameras", ownerToken, nvr.AddRequest{Code: invitation(t, cam, camOwner)})
	if code != http.StatusConflict {
		t.Fatalf("added twice: %d %s", code, b)
	}
	waitCamera(t, box, viewerToken, c.ID, func(c nvr.Camera) bool { return c.State == nvr.Online })

	// Live view through the NVR, as a viewer of the NVR.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := whep.View(ctx, "https://"+box.Addr().String()+"/api/v1/cameras/"+c.ID+"/whep", whep.ViewOptions{
		HTTPClient: testClient(), Header: http.Header{"Authorization": {"Bearer " + viewerToken}}, Frames: 15})
	if err != nil || st.FramesReceived < 15 || st.Width != 320 {
		t.Fatalf("live view: %+v %v", st, err)
	}
	t.Logf("live view through the NVR: first frame after %s", st.FirstFrame)

	// Its timeline, then its export, which ffprobe decodes.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		var tl api.TimelineAnswer
		_, b := call(t, box, "GET", "/api/v1/cameras/"+c.ID+"/recordings?from=-1m", viewerToken, nil)
		json.Unmarshal(b, &tl)
		if tl.Recorded >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("timeline: %s", b)
		}
	}
	if code, b := call(t, box, "GET", "/api/v1/recordings?from=-1m", viewerToken, nil); !strings.Contains(string(b), `"recorded_s": 0`) {
		t.Fatalf("the NVR's own stream recorded something: %d %s", code, b)
	}
	exportAndProbe := func() {
		t.Helper()
		code, mp4 := call(t, box, "GET", "/api/v1/cameras/"+c.ID+"/recordings/export?from=-1m&to=now", viewerToken, nil)
		if code != http.StatusOK {
			t.Fatalf("export: %d %s", code, mp4)
		}
		path := filepath.Join(t.TempDir(), "export.mp4")
		os.WriteFile(path, mp4, 0o600)
		out, err := exec.Command(ffprobe, "-v", "error", "-count_frames", "-select_streams", "v:0",
			"-show_entries", "stream=codec_name,width,nb_read_frames", "-of", "csv=p=0", path).CombinedOutput()
		if err != nil || !strings.HasPrefix(string(out), "h264,320,") {
			t.Fatalf("ffprobe: %v %s", err, out)
		}
	}
	exportAndProbe()
	if _, m := call(t, box, "GET", "/metrics", ownerToken, nil); !strings.Contains(string(m), `camd_nvr_camera_up{camera="`+c.ID+`"} 1`) ||
		!strings.Contains(string(m), `camd_nvr_camera_fragments_total{camera="`+c.ID+`"}`) {
		t.Errorf("metrics show no camera up:\n%s", m)
	}

	// Its recordings played back over WebRTC.
	pctx, pcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer pcancel()
	from := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	to := time.Now().UTC().Format(time.RFC3339)
	st, err = whep.View(pctx, "https://"+box.Addr().String()+"/api/v1/cameras/"+c.ID+"/recordings/whep?from="+from+"&to="+to, whep.ViewOptions{
		HTTPClient: testClient(), Header: http.Header{"Authorization": {"Bearer " + viewerToken}}, Frames: 10})
	if err != nil || st.FramesReceived < 10 || st.Width != 320 {
		t.Fatalf("playback: %+v %v", st, err)
	}

	req, _ := http.NewRequest("GET", "https://"+box.Addr().String()+"/api/v1/cameras/"+c.ID+"/snapshot", nil)
	req.Header.Set("Authorization", "Bearer "+viewerToken)
	resp, err := testClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	jpg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/jpeg" || len(jpg) < 100 {
		t.Fatalf("snapshot: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}

	// Removed: listed as removed, its recordings kept; then forgotten.
	if code, _ := call(t, box, "DELETE", "/api/v1/cameras/"+c.ID, viewerToken, nil); code != http.StatusForbidden {
		t.Fatalf("a viewer removes a camera: %d", code)
	}
	if code, b := call(t, box, "DELETE", "/api/v1/cameras/"+c.ID, ownerToken, nil); code != http.StatusOK {
		t.Fatalf("remove: %d %s", code, b)
	}
	waitCamera(t, box, viewerToken, c.ID, func(c nvr.Camera) bool { return c.State == nvr.Removed })
	exportAndProbe()
	if code, _ := call(t, box, "POST", "/api/v1/cameras/"+c.ID+"/whep", viewerToken, nil); code != http.StatusGone {
		t.Fatalf("live view of a removed camera: %d", code)
	}
	if code, _ := call(t, box, "DELETE", "/api/v1/cameras/"+c.ID+"?recordings=delete", ownerToken, nil); code != http.StatusOK {
		t.Fatalf("forget: %d", code)
	}
	if code, _ := call(t, box, "GET", "/api/v1/cameras/"+c.ID+"/recordings", viewerToken, nil); code != http.StatusNotFound {
		t.Fatalf("a forgotten camera's timeline: %d", code)
	}
}

// A camd camera in motion mode on the NVR is recorded on the motion it
// reports (its event stream): nothing before, the motion with the NVR's
// pre-roll after; the owner switches it to continuous.
func TestNVRRecordsACamdCameraOnItsMotion(t *testing.T) {
	camCfg := testConfig(t)
	camCfg.Recording.PostRoll = time.Second
	cam, stop := runningAt(t, camCfg)
	camOwner := owner(t, cam)
	// The camera's own recording off: it looks for no motion in its
	// (moving, synthetic) picture; motion comes from POST /api/v1/motion.
	// Started again with it, so that no motion it saw before can end
	// later.
	if code, b := call(t, cam, "PATCH", "/api/v1/settings", camOwner, map[string]any{"recording_mode": "off"}); code != http.StatusOK {
		t.Fatalf("recording_mode off: %d %s", code, b)
	}
	stop()
	camCfg.Listen = cam.Addr().String()
	cam, _ = runningAt(t, camCfg)
	cfg := nvrConfig(t)
	cfg.Recording.PreRoll, cfg.Recording.PostRoll = time.Second, time.Second
	box, _ := runningAt(t, cfg)
	ownerToken := owner(t, box)
	code, b := call(t, box, "POST", "/api/v1/cameras", ownerToken, nvr.AddRequest{Code: invitation(t, cam, camOwner), Recording: nvr.RecordMotion})
	var c nvr.Camera
	if code != http.StatusCreated || json.Unmarshal(b, &c) != nil || c.Recording != nvr.RecordMotion {
		t.Fatalf("add: %d %s", code, b)
	}
	recorded := func() float64 {
		var tl api.TimelineAnswer
		_, b := call(t, box, "GET", "/api/v1/cameras/"+c.ID+"/recordings?from=-1m", ownerToken, nil)
		json.Unmarshal(b, &tl)
		return tl.Recorded
	}
	waitCamera(t, box, ownerToken, c.ID, func(c nvr.Camera) bool { return c.State == nvr.Online && c.Frames > 30 })
	if r := recorded(); r != 0 {
		t.Fatalf("recorded %.1f s without motion", r)
	}
	if code, b := call(t, cam, "POST", "/api/v1/motion", camOwner, api.MotionTrigger{Seconds: 2}); code != http.StatusOK {
		t.Fatalf("motion on the camera: %d %s", code, b)
	}
	for deadline := time.Now().Add(30 * time.Second); recorded() < 3; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the motion was not recorded: %.1f s", recorded())
		}
	}
	code, b = call(t, box, "PATCH", "/api/v1/cameras/"+c.ID, ownerToken, map[string]string{"recording": "continuous"})
	if code != http.StatusOK || !strings.Contains(string(b), `"continuous"`) {
		t.Fatalf("to continuous: %d %s", code, b)
	}
}

// Bad requests to POST /api/v1/cameras: the errors say what went wrong
// and nothing is added.
func TestNVRAddRefusesBadCameras(t *testing.T) {
	box, _ := runningAt(t, nvrConfig(t))
	ownerToken := owner(t, box)
	for _, tc := range []struct {
		body any
		want int
	}{
		{map[string]string{}, http.StatusBadRequest},
		{map[string]string{"code": "CAMD1:NOT-A-CODE"}, http.StatusBadRequest},
		{map[string]string{"rtsp": "http://example.com/"}, http.StatusBadRequest},
		{map[string]string{"rtsp": "rtsp://127.0.0.1:1/live"}, http.StatusBadGateway},
		{map[string]string{"rtsp": "rtsp://127.0.0.1:1/live", "recording": "sometimes"}, http.StatusBadRequest},
		// An RTSP camera reports no motion: refused before it is asked.
		{map[string]string{"rtsp": "rtsp://127.0.0.1:1/live", "recording": "motion"}, http.StatusUnprocessableEntity},
		{map[string]string{"rtsp": "rtsp://127.0.0.1:1/live", "name": strings.Repeat("x", 65)}, http.StatusBadRequest},
		{map[string]string{"bogus": "x"}, http.StatusBadRequest},
	} {
		if code, b := call(t, box, "POST", "/api/v1/cameras", ownerToken, tc.body); code != tc.want {
			t.Errorf("%v: %d %s, want %d", tc.body, code, b, tc.want)
		}
	}
	if _, b := call(t, box, "GET", "/api/v1/cameras", ownerToken, nil); strings.TrimSpace(string(b)) != "[]" {
		t.Fatalf("cameras: %s", b)
	}
}

// Every camera route refuses a revoked user (a viewer, and an owner on
// the owner routes) with 401, as it refuses no credential.
func TestCameraRoutesRefuseRevokedUsers(t *testing.T) {
	box, _ := runningAt(t, nvrConfig(t))
	ownerToken := owner(t, box)
	viewerToken := viewer(t, box, ownerToken)
	code, b := call(t, box, "POST", "/api/v1/users/invite", ownerToken, api.InviteRequest{Role: pairing.Owner})
	var inv struct {
		Payload  string `json:"payload"`
		InviteID string `json:"invite_id"`
	}
	json.Unmarshal(b, &inv)
	p, err := pairing.Parse(inv.Payload)
	if code != http.StatusOK || err != nil {
		t.Fatalf("invite: %d %v", code, err)
	}
	code, second := pairWith(t, box, p.Secret[:], "second owner", inv.InviteID)
	if code != http.StatusCreated {
		t.Fatalf("second owner: %d", code)
	}
	var users []struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	}
	_, b = call(t, box, "GET", "/api/v1/users", ownerToken, nil)
	json.Unmarshal(b, &users)
	for _, u := range users {
		if u.Name == "viewer" || u.Name == "second owner" {
			if code, _ := call(t, box, "DELETE", "/api/v1/users/"+u.ID, ownerToken, nil); code >= 300 {
				t.Fatalf("revoke %s: %d", u.Name, code)
			}
		}
	}
	n := 0
	for _, r := range box.api.Routes() {
		if !strings.Contains(r.Pattern, "/api/v1/cameras") || r.Role == api.Public {
			continue
		}
		n++
		method, pattern, _ := strings.Cut(r.Pattern, " ")
		path := pathParam.ReplaceAllString(pattern, "x")
		for who, tok := range map[string]string{"no credential": "", "revoked viewer": viewerToken, "revoked owner": second.Token} {
			if code, _ := call(t, box, method, path, tok, nil); code != http.StatusUnauthorized {
				t.Errorf("%s as %s: %d, want 401", r.Pattern, who, code)
			}
		}
	}
	if n < 14 {
		t.Fatalf("%d camera routes", n)
	}
}

// An RTSP camera (camd's own RTSP server, a stream key as its user and
// password) is recorded by the NVR, and its snapshot is
// nvr.snapshot_command's JPEG of its newest keyframe; without the
// command it has none (501). The API never shows its password.
func TestNVRRecordsAnRTSPCameraWithSnapshots(t *testing.T) {
	ffprobe := testenv.Tool(t, "ffprobe")
	ffmpeg := testenv.Tool(t, "ffmpeg")
	camCfg := testConfig(t)
	camCfg.RTSP.Listen, camCfg.RTSP.RTPPort = "127.0.0.1:0", 0
	cam, _ := runningAt(t, camCfg)
	key := streamKey(t, cam, owner(t, cam), "nvr")
	url := "rtsp://" + key.ID + ":" + key.Secret + "@" + cam.rtsp.Addr().String() + "/live"

	cfg := nvrConfig(t)
	cfg.NVR.SnapshotCommand = []string{ffmpeg, "-loglevel", "error", "-f", "h264", "-i", "-", "-frames:v", "1", "-f", "mjpeg", "-"}
	box, _ := runningAt(t, cfg)
	ownerToken := owner(t, box)
	code, b := call(t, box, "POST", "/api/v1/cameras", ownerToken, nvr.AddRequest{RTSP: url})
	var c nvr.Camera
	if code != http.StatusCreated || json.Unmarshal(b, &c) != nil {
		t.Fatalf("add: %d %s", code, b)
	}
	waitCamera(t, box, ownerToken, c.ID, func(c nvr.Camera) bool { return c.State == nvr.Online && c.Frames > 30 })
	_, list := call(t, box, "GET", "/api/v1/cameras", ownerToken, nil)
	if strings.Contains(string(list), key.Secret) || strings.Contains(string(b), key.Secret) {
		t.Fatalf("the API shows the camera's password: %s", list)
	}

	req, _ := http.NewRequest("GET", "https://"+box.Addr().String()+"/api/v1/cameras/"+c.ID+"/snapshot", nil)
	req.Header.Set("Authorization", "Bearer "+ownerToken)
	resp, err := testClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	jpg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(jpg) < 100 {
		t.Fatalf("snapshot: %d %s", resp.StatusCode, jpg)
	}
	path := filepath.Join(t.TempDir(), "snap.jpg")
	os.WriteFile(path, jpg, 0o600)
	if out, err := exec.Command(ffprobe, "-v", "error", "-show_entries", "stream=codec_name,width", "-of", "csv=p=0", path).CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "mjpeg,320" {
		t.Fatalf("the snapshot: %v %s", err, out)
	}

	plain, _ := runningAt(t, nvrConfig(t))
	plainOwner := owner(t, plain)
	code, b = call(t, plain, "POST", "/api/v1/cameras", plainOwner, nvr.AddRequest{RTSP: url})
	if code != http.StatusCreated || json.Unmarshal(b, &c) != nil {
		t.Fatalf("add: %d %s", code, b)
	}
	if code, b := call(t, plain, "GET", "/api/v1/cameras/"+c.ID+"/snapshot", plainOwner, nil); code != http.StatusNotImplemented {
		t.Fatalf("snapshot without a command: %d %s", code, b)
	}
}

// Removing a camera with ?recordings=delete deletes its recordings from
// the store (the timeline and clips of its stream are empty) and leaves
// another camera's: one camd camera added twice, by invitation and by
// RTSP, is two cameras of the NVR with a stream each.
func TestNVRRemoveDeletesOnlyThatCamerasRecordings(t *testing.T) {
	camCfg := testConfig(t)
	camCfg.RTSP.Listen, camCfg.RTSP.RTPPort = "127.0.0.1:0", 0
	cam, _ := runningAt(t, camCfg)
	camOwner := owner(t, cam)
	key := streamKey(t, cam, camOwner, "nvr")
	box, _ := runningAt(t, nvrConfig(t))
	ownerToken := owner(t, box)

	var gone, kept nvr.Camera
	for _, add := range []struct {
		req nvr.AddRequest
		c   *nvr.Camera
	}{
		{nvr.AddRequest{Code: invitation(t, cam, camOwner)}, &gone},
		{nvr.AddRequest{RTSP: "rtsp://" + key.ID + ":" + key.Secret + "@" + cam.rtsp.Addr().String() + "/live"}, &kept},
	} {
		code, b := call(t, box, "POST", "/api/v1/cameras", ownerToken, add.req)
		if code != http.StatusCreated || json.Unmarshal(b, add.c) != nil {
			t.Fatalf("add: %d %s", code, b)
		}
	}
	recorded := func(c nvr.Camera) float64 {
		t.Helper()
		var tl api.TimelineAnswer
		code, b := call(t, box, "GET", "/api/v1/cameras/"+c.ID+"/recordings?from=-10m", ownerToken, nil)
		if code != http.StatusOK || json.Unmarshal(b, &tl) != nil {
			t.Fatalf("timeline of %s: %d %s", c.ID, code, b)
		}
		return tl.Recorded
	}
	for deadline := time.Now().Add(30 * time.Second); recorded(gone) < 2 || recorded(kept) < 2; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not recorded: %v s and %v s", recorded(gone), recorded(kept))
		}
	}
	if code, b := call(t, box, "DELETE", "/api/v1/cameras/"+gone.ID+"?recordings=delete", ownerToken, nil); code != http.StatusOK {
		t.Fatalf("remove with its recordings: %d %s", code, b)
	}
	store := box.recording.store
	from, to := time.Now().Add(-10*time.Minute), time.Now().Add(time.Minute)
	if tl, err := store.Timeline(gone.Stream, from, to); err != nil || len(tl.Spans) != 0 {
		t.Fatalf("the removed camera's stream is still recorded: %v %+v", err, tl.Spans)
	}
	if _, err := store.Clip(gone.Stream, from, to); !errors.Is(err, recordings.ErrNoRecording) {
		t.Fatalf("a clip of the removed camera's stream: %v", err)
	}
	if code, _ := call(t, box, "GET", "/api/v1/cameras/"+gone.ID+"/recordings", ownerToken, nil); code != http.StatusNotFound {
		t.Fatalf("the removed camera's timeline: %d", code)
	}
	if s := recorded(kept); s < 2 {
		t.Fatalf("the other camera kept %v s", s)
	}
	if code, mp4 := call(t, box, "GET", "/api/v1/cameras/"+kept.ID+"/recordings/export?from=-10m&to=now", ownerToken, nil); code != http.StatusOK || len(mp4) < 1000 {
		t.Fatalf("export of the other camera: %d, %d bytes", code, len(mp4))
	}
}
