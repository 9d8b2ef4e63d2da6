package nvr_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/camd-project/camd/device"
	"github.com/camd-project/camd/device/pairing"
	"github.com/camd-project/camd/internal/testenv"
	"github.com/camd-project/camd/nvr"
)

// quickMotion makes a camera whose motion ends a second after its cause
// (recording.post_roll), with its ONVIF service on onvifAddr if given.
func quickMotion(onvifAddr string) func(*device.Config) {
	return func(cfg *device.Config) {
		cfg.Recording.PostRoll = time.Second
		if onvifAddr != "" {
			cfg.ONVIF.Listen = onvifAddr
			cfg.RTSP.Listen = "127.0.0.1:0"
		}
	}
}

// motionCamera starts a camd camera (ONVIF on onvifAddr if given) whose
// motion comes only from POST /api/v1/motion: its own recording is off,
// so it does not look for motion in its (moving, synthetic) picture. It
// is started again with the setting, so that no motion it saw before
// can end later.
func motionCamera(t *testing.T, onvifAddr string) *camdCamera {
	t.Helper()
	cam := startCamd(t, quickMotion(onvifAddr))
	if code := cam.call(t, "PATCH", "/api/v1/settings", cam.owner, map[string]any{"recording_mode": "off"}, nil); code != http.StatusOK {
		t.Fatalf("recording_mode off: %d", code)
	}
	cam.stop()
	cam.start(t)
	return cam
}

// waitFollowing waits until the NVR has followed a camera's motion n
// times (its log says so once the camera answered).
func (b *nvrBox) waitFollowing(t *testing.T, n int) {
	t.Helper()
	testenv.Eventually(t, "the NVR follows the camera's motion", func() bool {
		return strings.Count(b.logs.String(), "nvr: following the camera's motion") >= n
	})
}

// recordsOnMotion checks a camera in motion mode on the NVR: while the
// camera reports no motion nothing is recorded; motion the camera
// detects (POST /api/v1/motion on it, two seconds) is reported to the
// NVR, which records it with its pre-roll and stops after the motion
// ended and its post-roll ran out; the recording decodes.
func recordsOnMotion(t *testing.T, box *nvrBox, cam *camdCamera, c nvr.Camera) {
	t.Helper()
	box.waitState(t, c.ID, nvr.Online)
	// Frames and no motion: nothing recorded.
	online := time.Now()
	frames := func() uint64 { c, _ := box.m.Get(c.ID); return c.Frames }
	testenv.Eventually(t, "15 frames", func() bool { return frames() >= 15 })
	t.Logf("15 frames in %v", time.Since(online).Round(time.Millisecond))
	if n := box.fragments(c.Stream); n != 0 || len(box.motion(c.ID)) != 0 {
		t.Fatalf("without motion: %d fragments recorded, motion %v", n, box.motion(c.ID))
	}
	box.waitFollowing(t, 1)
	start := time.Now()
	if code := cam.call(t, "POST", "/api/v1/motion", cam.owner, map[string]any{"seconds": 2}, nil); code != http.StatusOK {
		t.Fatalf("motion on the camera: %d", code)
	}
	testenv.Eventually(t, "motion reported and ended", func() bool {
		return slices.Equal(box.motion(c.ID), []bool{true, false})
	})
	reported := time.Since(start)
	testenv.Eventually(t, "the motion recorded", func() bool { return box.fragments(c.Stream) > 0 })
	// The span ends a post-roll after the motion did; then nothing more
	// is written.
	box.mu.Lock()
	rec := box.recs[c.Stream]
	box.mu.Unlock()
	testenv.Eventually(t, "the span ended", func() bool { return !rec.Stats().Motion })
	ended := time.Now()
	// Then nothing more is recorded over the next 15 frames but the
	// fragment that was open when the span ended (it started before the
	// end; a fragment is at most a few seconds).
	now := frames()
	testenv.Eventually(t, "15 more frames", func() bool { return frames() >= now+15 })
	after, err := box.store.Timeline(c.Stream, start.Add(-time.Minute), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if n := len(after.Spans); n == 0 || after.Spans[n-1].End.After(ended.Add(3*time.Second)) {
		t.Errorf("recorded after the motion ended at %s: %+v (motion %v)", ended.Format(time.StampMilli), after.Spans, box.motion(c.ID))
	}
	decoded := box.exportAndProbe(t, c.Stream, start.Add(-time.Minute))
	// At most the pre-roll (2 s), the motion (2 s and the camera's
	// post-roll of 1 s: the time its end took to come) and the NVR's
	// post-roll (1 s); not the minute the camera has been sending.
	var spans time.Duration
	tl, err := box.store.Timeline(c.Stream, start.Add(-time.Minute), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range tl.Spans {
		spans += s.End.Sub(s.Start)
	}
	t.Logf("motion reported and ended %v after the trigger; %d frames, %v recorded in %d spans", reported.Round(time.Millisecond), decoded, spans.Round(100*time.Millisecond), len(tl.Spans))
	if spans == 0 || spans > reported+4*time.Second {
		t.Errorf("recorded %v for 2 s of motion reported and ended over %v", spans, reported)
	}
}

// A camd camera in motion mode is recorded on the motion events of its
// own event stream.
func TestCamdCameraMotionMode(t *testing.T) {
	cam := motionCamera(t, "")
	box := newNVR(t, "", nil)
	c, err := box.m.Add(context.Background(), nvr.AddRequest{Code: cam.invite(t), Recording: nvr.RecordMotion})
	if err != nil {
		t.Fatal(err)
	}
	if c.Recording != nvr.RecordMotion {
		t.Fatalf("added %+v", c)
	}
	recordsOnMotion(t, box, cam, c)
}

// An ONVIF camera with an events service in motion mode is recorded on
// its motion topics (a PullPoint subscription).
func TestONVIFCameraMotionMode(t *testing.T) {
	onvifAddr := freePort(t)
	cam := motionCamera(t, onvifAddr)
	var key pairing.KeyCredential
	if code := cam.call(t, "POST", "/api/v1/keys", cam.owner, map[string]string{"for": "nvr"}, &key); code != http.StatusCreated {
		t.Fatalf("stream key: %d", code)
	}
	box := newNVR(t, "", nil)
	c, err := box.m.Add(context.Background(), nvr.AddRequest{ONVIF: onvifAddr, User: key.ID, Password: key.Secret, Recording: nvr.RecordMotion})
	if err != nil {
		t.Fatal(err)
	}
	recordsOnMotion(t, box, cam, c)
}

// A camera that reports no motion (RTSP by URL) cannot be in motion
// mode: refused when added and when set, with ErrNoMotion.
func TestRTSPCameraMotionModeRefused(t *testing.T) {
	cam := startRTSP(t, "")
	box := newNVR(t, "", nil)
	ctx := context.Background()
	if _, err := box.m.Add(ctx, nvr.AddRequest{RTSP: cam.url("nvr", "s3cret"), Recording: nvr.RecordMotion}); !errors.Is(err, nvr.ErrNoMotion) {
		t.Fatalf("added in motion mode: %v", err)
	}
	if len(box.m.List()) != 0 {
		t.Fatalf("added: %+v", box.m.List())
	}
	c, err := box.m.Add(ctx, nvr.AddRequest{RTSP: cam.url("nvr", "s3cret")})
	if err != nil {
		t.Fatal(err)
	}
	motion := nvr.RecordMotion
	if _, err := box.m.Set(c.ID, nvr.Change{Recording: &motion}); !errors.Is(err, nvr.ErrNoMotion) {
		t.Fatalf("set to motion: %v", err)
	}
	if got, _ := box.m.Get(c.ID); got.Recording != nvr.RecordContinuous {
		t.Fatalf("recording %q after a refused change", got.Recording)
	}
}

// The owner switches a camd camera from continuous to motion: the NVR
// starts following its motion (and stops when switched back).
func TestCamdCameraSetToMotion(t *testing.T) {
	cam := motionCamera(t, "")
	box := newNVR(t, "", nil)
	c, err := box.m.Add(context.Background(), nvr.AddRequest{Code: cam.invite(t)})
	if err != nil {
		t.Fatal(err)
	}
	box.waitState(t, c.ID, nvr.Online)
	motion, continuous := nvr.RecordMotion, nvr.RecordContinuous
	if _, err := box.m.Set(c.ID, nvr.Change{Recording: &motion}); err != nil {
		t.Fatal(err)
	}
	// The NVR follows the camera's motion once it is in motion mode.
	box.waitFollowing(t, 1)
	if code := cam.call(t, "POST", "/api/v1/motion", cam.owner, map[string]any{"seconds": 10}, nil); code != http.StatusOK {
		t.Fatalf("motion on the camera: %d", code)
	}
	testenv.Eventually(t, "motion reported", func() bool { return len(box.motion(c.ID)) > 0 })
	if _, err := box.m.Set(c.ID, nvr.Change{Recording: &continuous}); err != nil {
		t.Fatal(err)
	}
	// Back to continuous: the watch ends, motion that was on is ended.
	testenv.Eventually(t, "motion ended", func() bool {
		m := box.motion(c.ID)
		return len(m) > 0 && !m[len(m)-1]
	})
}
