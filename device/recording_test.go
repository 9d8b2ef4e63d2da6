package device

import (
	"bytes"
	"encoding/json"
	"errors"
	"image/jpeg"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/camd-project/camd/device/api"
	"github.com/camd-project/camd/internal/testenv"
	"github.com/camd-project/camd/media/h264/h264test"
	"github.com/camd-project/camd/storage/eventlog"
)

func TestBadRecordingConfig(t *testing.T) {
	cases := []struct {
		name, yaml string
		want       []string
	}{
		{"quota", "recording: {quota: lots}", []string{"recording.quota", `"lots"`, "80%"}},
		{"quota percent", "recording: {quota: 150%}", []string{"recording.quota"}},
		{"volume too big", "recording: {volume_size: 2GiB}", []string{"recording.volume_size", "1MiB to 512MiB"}},
		{"volume too small", "recording: {volume_size: 100kB}", []string{"recording.volume_size"}},
		{"post-roll", "recording: {post_roll: 0s}", []string{"recording.post_roll", "1s to 10m"}},
		{"region", "recording: {motion_regions: [[0.5, 0, 0.8, 1]]}", []string{"recording.motion_regions"}},
		{"snapshot command", "passthrough: {file: x.h264, snapshot_command: ['']}\nsource: passthrough", []string{"passthrough.snapshot_command"}},
		{"keyframe command", "passthrough: {file: x.h264, keyframe_command: ['', x]}\nsource: passthrough", []string{"passthrough.keyframe_command", "a program and its arguments"}},
		{"unknown", "recording: {mode: motion}", []string{`unknown field "mode"`, "path, quota, volume_size"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := Defaults()
			err := cfg.Decode(strings.NewReader(c.yaml))
			if err == nil {
				err = cfg.Validate()
			}
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("%v is not ErrConfig", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	cfg := Defaults()
	if err := cfg.Decode(strings.NewReader("recording: {quota: 2GiB, volume_size: 64MiB, motion_regions: [[0, 0, 0.5, 0.5]]}")); err != nil || cfg.Validate() != nil {
		t.Fatalf("good recording config refused: %v %v", err, cfg.Validate())
	}
}

// recordingDaemon runs camd on recordingConfig, recording continuously;
// tweaks change the config first.
func recordingDaemon(t *testing.T, tweaks ...func(*Config)) (*Daemon, string) {
	t.Helper()
	d, _ := runningAt(t, recordingConfig(t, tweaks...))
	return d, owner(t, d)
}

// recordingConfig is camd on a passthrough file with a keyframe every
// second.
func recordingConfig(t *testing.T, tweaks ...func(*Config)) Config {
	t.Helper()
	file := h264test.Encode(t, t.TempDir(), h264test.Stream{Rate: 30, GOP: 30, Frames: 300, Bitrate: 500_000})
	cfg := Defaults()
	cfg.Data = t.TempDir()
	cfg.Listen = "127.0.0.1:0"
	cfg.Source = "passthrough"
	cfg.Passthrough.File = file
	cfg.Recording.PostRoll = time.Second
	for _, f := range tweaks {
		f(&cfg)
	}
	return cfg
}

// get makes an authorized GET with extra headers.
func get(t *testing.T, d *Daemon, path, token string, hdr map[string]string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("GET", "https://"+d.Addr().String()+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := testClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func waitRecorded(t *testing.T, d *Daemon, token string, secs float64) api.TimelineAnswer {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, b := call(t, d, "GET", "/api/v1/recordings?from=-10m", token, nil)
		var tl api.TimelineAnswer
		json.Unmarshal(b, &tl)
		if code == http.StatusOK && tl.Recorded >= secs {
			return tl
		}
		if time.Now().After(deadline) {
			t.Fatalf("recorded %.1f s of %.1f: %d %s", tl.Recorded, secs, code, b)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestRecordingAPI(t *testing.T) {
	h264test.NeedFFmpeg(t)
	d, token := recordingDaemon(t)
	tl := waitRecorded(t, d, token, 3)
	if len(tl.Spans) != 1 || tl.Status.Recorder.Mode != "continuous" || tl.Status.Volumes != 1 {
		t.Fatalf("timeline: %+v", tl)
	}
	from := tl.Spans[0].Start.Add(500 * time.Millisecond).Format(time.RFC3339Nano)
	to := tl.Spans[0].Start.Add(2500 * time.Millisecond).Format(time.RFC3339Nano)
	path := "/api/v1/recordings/export?from=" + from + "&to=" + to

	resp := get(t, d, path, token, nil)
	whole, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "video/mp4" || len(whole) < 10_000 ||
		resp.Header.Get("Accept-Ranges") != "bytes" || resp.Header.Get("X-Camd-Start") == "" {
		t.Fatalf("export: %s %v, %d bytes", resp.Status, resp.Header, len(whole))
	}
	if !strings.Contains(string(whole[:64]), "ftyp") {
		t.Fatal("export does not start with ftyp")
	}
	// A range request gets the same bytes, and If-Range with the ETag
	// resumes.
	resp = get(t, d, path, token, map[string]string{"Range": "bytes=1000-1999", "If-Range": resp.Header.Get("ETag")})
	part, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent || string(part) != string(whole[1000:2000]) {
		t.Fatalf("range: %s, %d bytes", resp.Status, len(part))
	}
	// A client that goes away mid-download leaves nothing behind.
	for range 5 {
		resp = get(t, d, path, token, nil)
		io.ReadFull(resp.Body, make([]byte, 100))
		resp.Body.Close()
	}
	for _, c := range []struct {
		query string
		code  int
	}{
		{"from=now&to=now", 400},
		{"from=now&to=-1h", 400},
		{"from=-100h&to=-99h", 404},
		{"from=yesterday", 400},
	} {
		if code, b := call(t, d, "GET", "/api/v1/recordings/export?"+c.query, token, nil); code != c.code {
			t.Errorf("export %s: %d %s, want %d", c.query, code, b, c.code)
		}
	}
	if code, b := call(t, d, "GET", "/api/v1/recordings?from=1990-01-01T00:00:00Z&to=2300-01-01T00:00:00Z", token, nil); code != 200 {
		t.Errorf("years-wide timeline: %d %s", code, b)
	}
	// A passthrough stream has no raw pictures to snapshot, and no
	// snapshot command is set.
	if code, b := call(t, d, "GET", "/api/v1/snapshot", token, nil); code != http.StatusNotImplemented ||
		!strings.Contains(string(b), "snapshot_command") {
		t.Errorf("snapshot of passthrough: %d %s", code, b)
	}
	// Motion mode: an API trigger records a span and an event.
	motionEvent(t, d, token, "doorbell", func(e eventlog.Event) bool { return !e.End.IsZero() })
	if code, _ := call(t, d, "DELETE", "/api/v1/recordings", token, nil); code != 400 {
		t.Errorf("delete without a range: %d", code)
	}
	if code, b := call(t, d, "DELETE", "/api/v1/recordings?all=1", token, nil); code != 200 {
		t.Errorf("delete all: %d %s", code, b)
	}
}

// A hardware-encoded stream takes its snapshots through a command: here
// ffmpeg decoding the newest keyframe camd gives it on its standard input.
func TestPassthroughSnapshotsThroughACommand(t *testing.T) {
	h264test.NeedFFmpeg(t)
	d, token := recordingDaemon(t, func(c *Config) {
		c.Passthrough.SnapshotCommand = []string{"ffmpeg", "-loglevel", "error", "-f", "h264", "-i", "-",
			"-frames:v", "1", "-f", "mjpeg", "-"}
	})
	waitRecorded(t, d, token, 1)
	resp := get(t, d, "/api/v1/snapshot", token, nil)
	jpg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/jpeg" {
		t.Fatalf("snapshot: %s %s", resp.Status, jpg)
	}
	img, err := jpeg.Decode(bytes.NewReader(jpg))
	if err != nil || img.Bounds().Dx() != 320 || img.Bounds().Dy() != 240 {
		t.Fatalf("snapshot is not a 320x240 JPEG: %v %v", err, img)
	}
	captured, err := time.Parse(time.RFC3339Nano, resp.Header.Get("X-Camd-Captured"))
	if err != nil || time.Since(captured) > 5*time.Second {
		t.Fatalf("captured %q: not the newest keyframe", resp.Header.Get("X-Camd-Captured"))
	}
	_, b := call(t, d, "GET", "/api/v1/recordings/status", token, nil)
	var st api.RecordingStatus
	if err := json.Unmarshal(b, &st); err != nil || !st.Snapshots || st.Raw {
		t.Errorf("status: %v %s", err, b)
	}
	// A motion event from outside the picture gets its snapshot too.
	ev := motionEvent(t, d, token, "pir", func(e eventlog.Event) bool { return e.Snapshot != "" })
	code, jpg := call(t, d, "GET", "/api/v1/snapshots/"+ev.Snapshot, token, nil)
	if _, err := jpeg.Decode(bytes.NewReader(jpg)); code != 200 || err != nil {
		t.Fatalf("the motion event's snapshot: %d %v", code, err)
	}
}

// motionEvent switches to motion recording, triggers motion from outside
// the picture and waits for its one event to satisfy done.
func motionEvent(t *testing.T, d *Daemon, token, cause string, done func(eventlog.Event) bool) eventlog.Event {
	t.Helper()
	if code, b := call(t, d, "PATCH", "/api/v1/settings", token, map[string]any{"recording_mode": "motion"}); code != 200 {
		t.Fatalf("settings: %d %s", code, b)
	}
	if code, b := call(t, d, "POST", "/api/v1/motion", token, api.MotionTrigger{Cause: cause, Seconds: 0.5}); code != 200 {
		t.Fatalf("trigger: %d %s", code, b)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		_, b := call(t, d, "GET", "/api/v1/events?kind=motion", token, nil)
		var evs []eventlog.Event
		json.Unmarshal(b, &evs)
		if len(evs) == 1 && evs[0].Data["cause"] == cause && done(evs[0]) {
			return evs[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("motion event: %s", b)
		}
	}
}

func TestSnapshotCommandThatFailsIsA503(t *testing.T) {
	d, token := recordingDaemon(t, func(c *Config) {
		c.Passthrough.SnapshotCommand = []string{"/bin/sh", "-c", "echo 'isp busy' >&2; exit 1"}
	})
	waitRecorded(t, d, token, 0.5)
	code, b := call(t, d, "GET", "/api/v1/snapshot", token, nil)
	if code != http.StatusServiceUnavailable || !strings.Contains(string(b), "isp busy") {
		t.Fatalf("failing command: %d %s", code, b)
	}
	// Live view and recording go on.
	waitRecorded(t, d, token, 2)
}

// The board's PIR is motion for the recorder: it starts a span, and the
// span's event names it.
func TestPIRStartsAMotionSpan(t *testing.T) {
	d, _ := runningAt(t, passthroughConfig(t))
	d.board.sim.SetMotion(true)
	testenv.Eventually(t, "motion from the PIR", func() bool { return d.recording.rec.Stats().Motion })
	testenv.Eventually(t, "a motion event", func() bool {
		evs, _ := d.recording.events.List(time.Time{}, time.Time{}, "motion", 10)
		return len(evs) == 1 && evs[0].Data["cause"] == "pir"
	})
}
