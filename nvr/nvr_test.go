package nvr_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/pion/rtp"
	"go.etcd.io/bbolt"
	"go.uber.org/goleak"

	"github.com/camd-project/camd/device"
	"github.com/camd-project/camd/device/pairing"
	"github.com/camd-project/camd/internal/testenv"
	"github.com/camd-project/camd/media"
	"github.com/camd-project/camd/media/h264/h264test"
	"github.com/camd-project/camd/nvr"
)

// A camd camera added by its owner's invitation is paired, pulled over
// WebRTC, recorded in its own stream, and exported as MP4 that ffprobe
// decodes; the record keeps the credential but shows none, and survives
// a restart of the NVR.
func TestCamdCameraByInvitationIsRecorded(t *testing.T) {
	cam := startCamd(t)
	dir := t.TempDir()
	box := newNVR(t, dir, nil)
	start := time.Now()
	c, err := box.m.Add(context.Background(), nvr.AddRequest{Code: cam.invite(t)})
	if err != nil {
		t.Fatal(err)
	}
	if c.Kind != nvr.KindCamd || c.Stream < 2 || c.DeviceID == "" {
		t.Fatalf("added %+v", c)
	}
	box.waitState(t, c.ID, nvr.Online)
	testenv.Eventually(t, "3 fragments recorded", func() bool { return box.fragments(c.Stream) >= 3 })
	box.exportAndProbe(t, c.Stream, start)
	box.noSecretLogged(t, box.secrets(t))
	// A LAN search leaves it out by its device ID.
	if !box.m.Added(c.DeviceID, nil) || box.m.Added("another", nil) {
		t.Fatal("Added by device ID")
	}

	// The same camera again: refused before its invitation is spent.
	if _, err := box.m.Add(context.Background(), nvr.AddRequest{Code: cam.invite(t)}); !errors.Is(err, nvr.ErrExists) {
		t.Fatalf("added twice: %v", err)
	}
	b, _ := json.Marshal(box.m.List())
	if strings.Contains(strings.ToLower(string(b)), "token") || strings.Contains(string(b), "fingerprint") {
		t.Fatalf("the list shows a secret: %s", b)
	}

	box.close()
	box = newNVR(t, dir, nil)
	got, err := box.m.Get(c.ID)
	if err != nil || got.Stream != c.Stream || got.DeviceID != c.DeviceID {
		t.Fatalf("after a restart: %+v, %v", got, err)
	}
	box.waitState(t, c.ID, nvr.Online)
}

// A code whose secret is not the invitation's is refused by the camera;
// a setup code and garbage are refused by the NVR; nothing is added.
func TestCamdWrongCodeRefused(t *testing.T) {
	cam := startCamd(t)
	box := newNVR(t, "", nil)
	p, err := pairing.Parse(cam.invite(t))
	if err != nil {
		t.Fatal(err)
	}
	p.Secret[0] ^= 1
	if _, err := box.m.Add(context.Background(), nvr.AddRequest{Code: p.String()}); !errors.Is(err, nvr.ErrRefused) {
		t.Fatalf("wrong secret: %v", err)
	}
	if _, err := box.m.Add(context.Background(), nvr.AddRequest{Code: cam.d.SetupPayload()}); !errors.Is(err, nvr.ErrBadRequest) {
		t.Fatalf("setup code: %v", err)
	}
	for _, req := range []nvr.AddRequest{{Code: "CAMD1:garbage"}, {}, {Code: cam.invite(t), RTSP: "rtsp://x/"}, {RTSP: "http://x/"}} {
		if _, err := box.m.Add(context.Background(), req); !errors.Is(err, nvr.ErrBadRequest) {
			t.Fatalf("%+v: %v", req, err)
		}
	}
	if n := len(box.m.List()); n != 0 {
		t.Fatalf("%d cameras added", n)
	}
}

// An RTSP camera is recorded in its own stream; its credentials are
// checked when it is added; unreachable and duplicate cameras are
// refused.
func TestRTSPCameraIsRecorded(t *testing.T) {
	cam := startRTSP(t, "")
	box := newNVR(t, "", nil)
	ctx := context.Background()
	if _, err := box.m.Add(ctx, nvr.AddRequest{RTSP: cam.url("nvr", "wrong")}); !errors.Is(err, nvr.ErrRefused) {
		t.Fatalf("wrong password: %v", err)
	}
	if _, err := box.m.Add(ctx, nvr.AddRequest{RTSP: cam.url("", "")}); !errors.Is(err, nvr.ErrRefused) {
		t.Fatalf("no password: %v", err)
	}
	dead := startRTSP(t, "")
	deadURL := dead.url("nvr", "s3cret")
	dead.stop()
	if _, err := box.m.Add(ctx, nvr.AddRequest{RTSP: deadURL}); !errors.Is(err, nvr.ErrUnreachable) {
		t.Fatalf("unreachable: %v", err)
	}
	start := time.Now()
	c, err := box.m.Add(ctx, nvr.AddRequest{RTSP: cam.url("nvr", "s3cret"), Name: "porch"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(c.Address, "s3cret") || c.Name != "porch" || c.Kind != nvr.KindRTSP {
		t.Fatalf("added %+v", c)
	}
	if _, err := box.m.Add(ctx, nvr.AddRequest{RTSP: cam.url("", ""), User: "nvr", Password: "s3cret"}); !errors.Is(err, nvr.ErrExists) {
		t.Fatalf("added twice: %v", err)
	}
	box.waitState(t, c.ID, nvr.Online)
	testenv.Eventually(t, "3 fragments recorded", func() bool { return box.fragments(c.Stream) >= 3 })
	box.exportAndProbe(t, c.Stream, start)
	box.noSecretLogged(t, []string{"s3cret"})
	// A LAN search leaves it out by the address it was added with.
	loopback := []netip.Addr{netip.MustParseAddr("::ffff:127.0.0.1")}
	if !box.m.Added("", loopback) || box.m.Added("", []netip.Addr{netip.MustParseAddr("192.0.2.1")}) {
		t.Fatal("Added by address")
	}

	// Removed, it is listed without being pulled; its recordings stay,
	// in its stream.
	if _, err := box.m.Remove(c.ID, false); err != nil {
		t.Fatal(err)
	}
	if got, err := box.m.Get(c.ID); err != nil || got.State != nvr.Removed || got.RemovedAt.IsZero() {
		t.Fatalf("removed camera: %+v %v", got, err)
	}
	if _, err := box.m.Hub(c.ID); !errors.Is(err, nvr.ErrRemoved) {
		t.Fatalf("removed camera's hub: %v", err)
	}
	if box.m.Added("", loopback) {
		t.Fatal("a removed camera is still Added")
	}
	box.cat.View(func(tx *bbolt.Tx) error {
		if v := tx.Bucket([]byte("nvr")).Bucket([]byte("cameras")).Get([]byte(c.ID)); bytes.Contains(v, []byte("s3cret")) {
			t.Errorf("the removed camera's password is still in the catalog: %s", v)
		}
		return nil
	})
	box.exportAndProbe(t, c.Stream, start)
	// Added again, it gets a new stream.
	c2, err := box.m.Add(ctx, nvr.AddRequest{RTSP: cam.url("nvr", "s3cret")})
	if err != nil || c2.Stream == c.Stream {
		t.Fatalf("added again: %+v %v", c2, err)
	}
	// Forgotten, it is gone from the list.
	if _, err := box.m.Remove(c.ID, true); err != nil {
		t.Fatal(err)
	}
	if _, err := box.m.Get(c.ID); !errors.Is(err, nvr.ErrNotFound) {
		t.Fatalf("forgotten camera: %v", err)
	}
	if n := len(box.m.List()); n != 1 {
		t.Fatalf("%d cameras listed", n)
	}
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// A camera that stops is offline within 10 s (an event), and online
// again when it comes back, recording again.
func TestCameraOfflineAndBack(t *testing.T) {
	cam := startRTSP(t, "")
	box := newNVR(t, "", nil)
	c, err := box.m.Add(context.Background(), nvr.AddRequest{RTSP: cam.url("nvr", "s3cret")})
	if err != nil {
		t.Fatal(err)
	}
	box.waitState(t, c.ID, nvr.Online)
	testenv.Eventually(t, "a fragment recorded", func() bool { return box.fragments(c.Stream) >= 1 })

	addr := cam.addr
	killed := time.Now()
	cam.stop()
	e := box.waitEvent(t, nvr.EventOffline, c.ID, killed, 10*time.Second)
	t.Logf("offline after %s: %s", e.at.Sub(killed).Round(time.Millisecond), e.data["error"])
	before := box.fragments(c.Stream)

	restarted := time.Now()
	startRTSP(t, addr)
	e = box.waitEvent(t, nvr.EventOnline, c.ID, restarted, 20*time.Second)
	t.Logf("online %s after the restart", e.at.Sub(restarted).Round(time.Millisecond))
	testenv.Eventually(t, "recording resumed", func() bool { return box.fragments(c.Stream) >= before+2 })
}

// A camd camera whose owner revokes the NVR is unauthorized, with an
// event, and is not tried again before UnauthorizedRetry.
func TestRevokedCamdCameraIsUnauthorized(t *testing.T) {
	cam := startCamd(t)
	box := newNVR(t, "", func(o *nvr.Options) { o.Name = "the nvr"; o.Silence = 2 * time.Second })
	c, err := box.m.Add(context.Background(), nvr.AddRequest{Code: cam.invite(t)})
	if err != nil {
		t.Fatal(err)
	}
	box.waitState(t, c.ID, nvr.Online)
	revoked := time.Now()
	cam.revoke(t, "the nvr")
	e := box.waitEvent(t, nvr.EventUnauthorized, c.ID, revoked, 20*time.Second)
	t.Logf("unauthorized after %s: %s", e.at.Sub(revoked).Round(time.Millisecond), e.data["error"])
	got := box.waitState(t, c.ID, nvr.Unauthorized)
	if !strings.Contains(got.LastError, "401") && !strings.Contains(got.LastError, "403") {
		t.Fatalf("last error %q", got.LastError)
	}
	// An offline camera would be tried again every MinBackoff (200 ms)
	// to MaxBackoff (1 s); an unauthorized one waits UnauthorizedRetry.
	window := time.After(3 * time.Second)
	for done := false; !done; {
		select {
		case <-window:
			done = true
		case <-time.After(100 * time.Millisecond):
			if now, _ := box.m.Get(c.ID); now.Attempts != got.Attempts || now.State != nvr.Unauthorized {
				t.Fatalf("tried again: %+v, was %+v", now, got)
			}
		}
	}
}

// A stream with no video, or with H.265, is refused when it is added.
func TestStreamWithoutH264Refused(t *testing.T) {
	box := newNVR(t, "", nil)
	for name, forma := range map[string]format.Format{
		"audio only": &format.G711{PayloadTyp: 0, MULaw: true, SampleRate: 8000, ChannelCount: 1},
		"h265":       &format.H265{PayloadTyp: 96},
	} {
		t.Run(name, func(t *testing.T) {
			typ := description.MediaTypeAudio
			if name == "h265" {
				typ = description.MediaTypeVideo
			}
			f := startFakeRTSP(t, &description.Session{Medias: []*description.Media{{Type: typ, Formats: []format.Format{forma}}}})
			_, err := box.m.Add(context.Background(), nvr.AddRequest{RTSP: f.url()})
			if !errors.Is(err, nvr.ErrNoVideo) {
				t.Fatalf("added: %v", err)
			}
			t.Log(err)
		})
	}
}

// A camera that sends garbage RTP in its H.264 track is added (its
// description is good) but never online: offline, tried again, and the
// NVR survives it.
func TestGarbageRTPIsOffline(t *testing.T) {
	sps, pps := h264test.SPS320x240(), h264test.PPS320x240()
	f := startFakeRTSP(t, &description.Session{Medias: []*description.Media{{Type: description.MediaTypeVideo,
		Formats: []format.Format{&format.H264{PayloadTyp: 96, SPS: sps, PPS: pps, PacketizationMode: 1}}}}})
	box := newNVR(t, "", func(o *nvr.Options) { o.Silence = 2 * time.Second })
	c, err := box.m.Add(context.Background(), nvr.AddRequest{RTSP: f.url()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		rnd := rand.New(rand.NewPCG(1, 2))
		var seq uint16
		for ctx.Err() == nil {
			payload := make([]byte, 1+rnd.IntN(1400))
			for i := range payload {
				payload[i] = byte(rnd.Uint32())
			}
			seq++
			f.write(&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: uint32(seq) * 3000, Marker: seq%4 == 0}, Payload: payload})
			select {
			case <-ctx.Done():
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	e := box.waitEvent(t, nvr.EventOffline, c.ID, time.Time{}, 20*time.Second)
	t.Log(e.data["error"])
	testenv.Eventually(t, "tried again", func() bool { return f.plays() >= 2 })
	if got, _ := box.m.Get(c.ID); got.State == nvr.Online {
		t.Fatalf("garbage made it online: %+v", got)
	}
}

// A camera that stops sending but keeps its connection open is offline
// within 10 s of its last frame.
func TestSilentCameraOfflineWithin10s(t *testing.T) {
	cam := startRTSP(t, "")
	// RTSP's own read timeout longer than the silence the NVR allows.
	box := newNVR(t, "", func(o *nvr.Options) { o.Timeout = 30 * time.Second })
	c, err := box.m.Add(context.Background(), nvr.AddRequest{RTSP: cam.url("nvr", "s3cret")})
	if err != nil {
		t.Fatal(err)
	}
	box.waitState(t, c.ID, nvr.Online)
	silenced := time.Now()
	cam.cancel() // the source stops; the RTSP session stays
	e := box.waitEvent(t, nvr.EventOffline, c.ID, silenced, 10*time.Second)
	t.Logf("offline after %s: %s", e.at.Sub(silenced).Round(time.Millisecond), e.data["error"])
}

// A camd camera that is stopped is offline within 10 s, and online
// again, recording, when it is back at its address.
func TestCamdCameraRestarts(t *testing.T) {
	cam := startCamd(t)
	box := newNVR(t, "", nil)
	c, err := box.m.Add(context.Background(), nvr.AddRequest{Code: cam.invite(t)})
	if err != nil {
		t.Fatal(err)
	}
	box.waitState(t, c.ID, nvr.Online)
	killed := time.Now()
	cam.stop()
	e := box.waitEvent(t, nvr.EventOffline, c.ID, killed, 10*time.Second)
	t.Logf("offline after %s: %s", e.at.Sub(killed).Round(time.Millisecond), e.data["error"])
	before := box.fragments(c.Stream)
	restarted := time.Now()
	cam.start(t)
	e = box.waitEvent(t, nvr.EventOnline, c.ID, restarted, 30*time.Second)
	t.Logf("online %s after the restart", e.at.Sub(restarted).Round(time.Millisecond))
	testenv.Eventually(t, "recording resumed", func() bool { return box.fragments(c.Stream) >= before+2 })
}

// onvifCamera starts a camd camera with its ONVIF and RTSP services on
// (and tweaks) and returns its ONVIF address and a stream key for the NVR.
func onvifCamera(t *testing.T, tweaks ...func(*device.Config)) (string, pairing.KeyCredential) {
	t.Helper()
	onvifAddr := freePort(t)
	cam := startCamd(t, append(tweaks, func(cfg *device.Config) {
		cfg.ONVIF.Listen = onvifAddr
		cfg.RTSP.Listen = "127.0.0.1:0"
	})...)
	var key pairing.KeyCredential
	if code := cam.call(t, "POST", "/api/v1/keys", cam.owner, map[string]string{"for": "nvr"}, &key); code != http.StatusCreated {
		t.Fatalf("stream key: %d", code)
	}
	return onvifAddr, key
}

// An ONVIF camera (camd with its ONVIF and RTSP services on) is added by
// its address and a stream key: the NVR asks it for its stream's address
// and records it over RTSP. A wrong password is refused.
func TestONVIFCameraIsRecorded(t *testing.T) {
	onvifAddr, key := onvifCamera(t)
	box := newNVR(t, "", nil)
	ctx := context.Background()
	if _, err := box.m.Add(ctx, nvr.AddRequest{ONVIF: onvifAddr, User: key.ID, Password: "wrong"}); !errors.Is(err, nvr.ErrRefused) {
		t.Fatalf("wrong password: %v", err)
	}
	if _, err := box.m.Add(ctx, nvr.AddRequest{ONVIF: "not an address"}); !errors.Is(err, nvr.ErrBadRequest) {
		t.Fatalf("bad address: %v", err)
	}
	start := time.Now()
	c, err := box.m.Add(ctx, nvr.AddRequest{ONVIF: onvifAddr, User: key.ID, Password: key.Secret})
	if err != nil {
		t.Fatal(err)
	}
	if c.Kind != nvr.KindONVIF || c.Address != onvifAddr {
		t.Fatalf("added %+v", c)
	}
	box.waitState(t, c.ID, nvr.Online)
	testenv.Eventually(t, "3 fragments recorded", func() bool { return box.fragments(c.Stream) >= 3 })
	box.exportAndProbe(t, c.Stream, start)
	if _, err := box.m.Add(ctx, nvr.AddRequest{ONVIF: onvifAddr, User: key.ID, Password: key.Secret}); !errors.Is(err, nvr.ErrExists) {
		t.Fatalf("added twice: %v", err)
	}
}

// An RTSP camera's Opus audio is recorded with its video (camd's RTSP
// server offers Opus and G.711; the NVR takes the Opus).
func TestRTSPCameraAudioIsRecorded(t *testing.T) {
	ffprobe := testenv.Tool(t, "ffprobe")
	cam := startRTSP(t, "")
	box := newNVR(t, "", nil)
	start := time.Now()
	c, err := box.m.Add(context.Background(), nvr.AddRequest{RTSP: cam.url("nvr", "s3cret")})
	if err != nil {
		t.Fatal(err)
	}
	box.waitState(t, c.ID, nvr.Online)
	testenv.Eventually(t, "3 fragments recorded", func() bool { return box.fragments(c.Stream) >= 3 })
	path := box.export(t, c.Stream, start)
	out, err := exec.Command(ffprobe, "-v", "error", "-show_entries", "stream=codec_type,codec_name", "-of", "csv=p=0", path).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "h264,video") || !strings.Contains(string(out), "opus,audio") {
		t.Fatalf("the export's streams: %v\n%s", err, out)
	}
}

// The owner renames a camera and turns its recording off: the change is
// kept and told (Options.Changed); a mode that does not exist is refused,
// and so is motion for a camera that reports none.
func TestSetNameRecordingAndShare(t *testing.T) {
	cam := startRTSP(t, "")
	dir := t.TempDir()
	changed := make(chan nvr.Camera, 4)
	box := newNVR(t, dir, func(o *nvr.Options) { o.Changed = func(c nvr.Camera) { changed <- c } })
	c, err := box.m.Add(context.Background(), nvr.AddRequest{RTSP: cam.url("nvr", "s3cret")})
	if err != nil {
		t.Fatal(err)
	}
	if c.Recording != nvr.RecordContinuous {
		t.Fatalf("default recording %q", c.Recording)
	}
	name, off, motion, bogus := "gate", nvr.RecordOff, nvr.RecordMotion, nvr.Recording("sometimes")
	if _, err := box.m.Set(c.ID, nvr.Change{Recording: &bogus}); !errors.Is(err, nvr.ErrBadRequest) {
		t.Fatalf("mode %q: %v", bogus, err)
	}
	// An RTSP camera reports no motion (TestRTSPCameraMotionModeRefused).
	if _, err := box.m.Set(c.ID, nvr.Change{Recording: &motion}); !errors.Is(err, nvr.ErrNoMotion) {
		t.Fatalf("motion: %v", err)
	}
	if _, err := box.m.Set("cam-nope", nvr.Change{Name: &name}); !errors.Is(err, nvr.ErrNotFound) {
		t.Fatalf("unknown camera: %v", err)
	}
	for _, bad := range []float64{-1, 101} {
		if _, err := box.m.Set(c.ID, nvr.Change{QuotaShare: &bad}); !errors.Is(err, nvr.ErrBadRequest) {
			t.Fatalf("quota_share %v: %v", bad, err)
		}
	}
	share := 25.0
	got, err := box.m.Set(c.ID, nvr.Change{Name: &name, Recording: &off, QuotaShare: &share})
	if err != nil || got.Name != "gate" || got.Recording != nvr.RecordOff || got.QuotaShare != 25 {
		t.Fatalf("set: %+v %v", got, err)
	}
	if told := <-changed; told.ID != c.ID || told.Recording != nvr.RecordOff || told.QuotaShare != 25 {
		t.Fatalf("told %+v", told)
	}
	box.close()
	box = newNVR(t, dir, nil)
	if got, err := box.m.Get(c.ID); err != nil || got.Name != "gate" || got.Recording != nvr.RecordOff || got.QuotaShare != 25 {
		t.Fatalf("after a restart: %+v %v", got, err)
	}
}

// TestViewerAsksTheCameraForAKeyframe: a viewer of an ONVIF camera
// through the NVR (a consumer that jumps to live on the camera's hub) has
// the camera asked for a keyframe (SetSynchronizationPoint), and goes on
// from it rather than from the cached group of pictures. The camera is
// camd passing through an encoder (internal/cmd/idrenc) that makes a
// keyframe a minute by itself and one on SIGUSR1, which camd's
// passthrough.keyframe_command sends; the viewer joins 2 s after the
// camera's last keyframe and reads at most 300 frames (10 s) for the one
// asked for.
func TestViewerAsksTheCameraForAKeyframe(t *testing.T) {
	testenv.Tool(t, "go")
	idrenc := filepath.Join(t.TempDir(), "idrenc")
	if out, err := exec.Command("go", "build", "-o", idrenc, "../internal/cmd/idrenc").CombinedOutput(); err != nil {
		t.Fatalf("building idrenc: %v\n%s", err, out)
	}
	onvifAddr, key := onvifCamera(t, func(cfg *device.Config) {
		cfg.Source = "passthrough"
		cfg.Passthrough.Command = []string{idrenc, "-width", "320", "-height", "240", "-gop", "1m"}
		cfg.Passthrough.KeyframeCommand = []string{"sh", "-c", `kill -USR1 "$CAMD_SOURCE_PID"`}
	})
	box := newNVR(t, "", nil)
	c, err := box.m.Add(context.Background(), nvr.AddRequest{ONVIF: onvifAddr, User: key.ID, Password: key.Secret})
	if err != nil {
		t.Fatal(err)
	}
	box.waitState(t, c.ID, nvr.Online)
	hub, err := box.m.Hub(c.ID)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "60 frames since the camera's last keyframe", func() bool { return hub.Stats().GOPCacheFrames >= 60 })
	cached := hub.LastKeyframe()
	viewer := hub.Subscribe(media.ConsumerOptions{Name: "viewer test", JumpToLive: true})
	defer viewer.Close()
	for n := 0; ; {
		f, _, err := viewer.Next(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if f.Kind != media.Video {
			continue
		}
		if n++; n == 1 && f != cached {
			t.Fatal("the viewer did not start from the cached keyframe")
		}
		if f.Key && f != cached {
			t.Logf("a new keyframe at the viewer's frame %d", n)
			break
		}
		if n == 300 {
			t.Fatal("no new keyframe in 300 frames: the camera was not asked")
		}
	}
}
