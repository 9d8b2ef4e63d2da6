package nvr_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/camd-project/camd/device"
	"github.com/camd-project/camd/device/pairing"
	"github.com/camd-project/camd/internal/testenv"
	"github.com/camd-project/camd/media"
	"github.com/camd-project/camd/media/encoder"
	"github.com/camd-project/camd/media/export"
	"github.com/camd-project/camd/media/recorder"
	"github.com/camd-project/camd/media/rtsp"
	"github.com/camd-project/camd/media/synthetic"
	"github.com/camd-project/camd/nvr"
	"github.com/camd-project/camd/storage"
	"github.com/camd-project/camd/storage/recordings"
)

// camdCamera is a whole camd daemon on loopback (synthetic source), as
// the NVR finds one on its LAN.
type camdCamera struct {
	data, listen string
	tweak        func(*device.Config)
	d            *device.Daemon
	cancel       context.CancelFunc
	done         chan struct{}
	owner        string
}

func startCamd(t *testing.T, tweaks ...func(*device.Config)) *camdCamera {
	t.Helper()
	c := &camdCamera{data: t.TempDir(), listen: "127.0.0.1:0", tweak: func(cfg *device.Config) {
		for _, f := range tweaks {
			f(cfg)
		}
	}}
	c.start(t)
	c.owner = c.pairOwner(t)
	t.Cleanup(c.stop)
	return c
}

func (c *camdCamera) start(t *testing.T) {
	t.Helper()
	cfg := device.Defaults()
	cfg.Data, cfg.Listen = c.data, c.listen
	c.tweak(&cfg)
	d, err := device.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	c.d, c.listen = d, d.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel, c.done = cancel, make(chan struct{})
	go func() { d.Run(ctx); close(c.done) }()
}

func (c *camdCamera) stop() {
	if c.cancel != nil {
		c.cancel()
		<-c.done
		c.cancel = nil
	}
}

func client() *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true}, Timeout: 10 * time.Second}
}

// call makes a JSON request to the camera as token.
func (c *camdCamera) call(t *testing.T, method, path, token string, body, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, "https://"+c.listen+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		json.Unmarshal(b, out)
	}
	return resp.StatusCode
}

func (c *camdCamera) pairOwner(t *testing.T) string {
	t.Helper()
	p, err := pairing.Parse(c.d.SetupPayload())
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Nonce    []byte `json:"nonce"`
		DeviceID string `json:"device_id"`
	}
	c.call(t, "POST", "/api/v1/pair/start", "", map[string]string{}, &st)
	var done struct {
		Token string `json:"token"`
	}
	code := c.call(t, "POST", "/api/v1/pair/finish", "", map[string]any{"nonce": st.Nonce, "name": "owner", "proof": pairing.Proof(p.Secret[:], st.DeviceID, st.Nonce, "owner")}, &done)
	if code != http.StatusCreated {
		t.Fatalf("owner pairing: %d", code)
	}
	return done.Token
}

// invite makes a viewer invitation: the code the owner gives the NVR.
func (c *camdCamera) invite(t *testing.T) string {
	t.Helper()
	var inv struct {
		Payload string `json:"payload"`
	}
	if code := c.call(t, "POST", "/api/v1/users/invite", c.owner, map[string]string{"role": "viewer"}, &inv); code != http.StatusOK {
		t.Fatalf("invite: %d", code)
	}
	return inv.Payload
}

// revoke revokes every user named name.
func (c *camdCamera) revoke(t *testing.T, name string) {
	t.Helper()
	var users []struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	}
	c.call(t, "GET", "/api/v1/users", c.owner, nil, &users)
	n := 0
	for _, u := range users {
		if u.Name == name {
			if code := c.call(t, "DELETE", "/api/v1/users/"+u.ID, c.owner, nil, nil); code >= 300 {
				t.Fatalf("revoke: %d", code)
			}
			n++
		}
	}
	if n == 0 {
		t.Fatalf("no user %q in %+v", name, users)
	}
}

// rtspCamera is a synthetic camera behind camd's own RTSP server, with
// one stream key ("nvr", "s3cret").
type rtspCamera struct {
	addr   string
	hub    *media.Hub
	srv    *rtsp.Server
	cancel context.CancelFunc
	done   chan struct{}
}

func startRTSP(t *testing.T, addr string) *rtspCamera {
	t.Helper()
	src, err := synthetic.New(synthetic.Options{Video: encoder.H264Options{Width: 320, Height: 240, FPS: 15}})
	if err != nil {
		t.Fatal(err)
	}
	c := &rtspCamera{hub: media.NewHub(media.HubOptions{}), done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	go func() { media.Supervise(ctx, src, c.hub, media.SuperviseOptions{}); close(c.done) }()
	verify := func(user string, proof func(string) bool) (string, error) {
		if user != "nvr" || !proof("s3cret") {
			return "", errors.New("unknown key")
		}
		return user, nil
	}
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	c.srv, err = rtsp.New(c.hub, rtsp.Options{Address: addr, Verify: verify})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	c.addr = c.srv.Addr().String()
	t.Cleanup(c.stop)
	return c
}

func (c *rtspCamera) url(user, password string) string {
	if user != "" {
		return "rtsp://" + user + ":" + password + "@" + c.addr + "/live"
	}
	return "rtsp://" + c.addr + "/live"
}

func (c *rtspCamera) stop() {
	if c.srv == nil {
		return
	}
	c.srv.Close()
	c.cancel()
	<-c.done
	c.hub.Close()
	c.srv = nil
}

// nvrBox is an NVR: a catalog, a recording store, and a manager whose
// cameras each get a recorder of their stream.
type nvrBox struct {
	m      *nvr.Manager
	cat    *storage.Catalog
	store  *recordings.Store
	cancel context.CancelFunc
	done   chan struct{}

	logs testenv.Buffer

	mu      sync.Mutex
	events  []event
	recs    map[uint32]*recorder.Recorder
	motions map[string][]bool // camera ID → the motion it reported
}

type event struct {
	kind   string
	camera string
	at     time.Time
	data   map[string]string
}

func newNVR(t *testing.T, dir string, tweak func(*nvr.Options)) *nvrBox {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	cat, err := storage.OpenCatalog(filepath.Join(dir, "catalog.db"), storage.CatalogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	store, err := recordings.Open(cat, recordings.Options{Dir: filepath.Join(dir, "rec"), Quota: recordings.Quota{Bytes: 64 << 20}, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	b := &nvrBox{cat: cat, store: store, recs: map[uint32]*recorder.Recorder{}, motions: map[string][]bool{}}
	opts := nvr.Options{
		Catalog: cat,
		Attach: func(c nvr.Camera, hub *media.Hub) func() {
			mode := recorder.Mode(c.Recording) // the same names
			rec := recorder.New(hub, store, recorder.Options{Stream: c.Stream, Mode: mode, PreRoll: 2 * time.Second, PostRoll: time.Second})
			b.mu.Lock()
			b.recs[c.Stream] = rec
			b.mu.Unlock()
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { rec.Run(ctx); close(done) }()
			return func() { cancel(); <-done }
		},
		Motion: func(c nvr.Camera, active bool, at time.Time) {
			b.mu.Lock()
			defer b.mu.Unlock()
			b.motions[c.ID] = append(b.motions[c.ID], active)
			if r := b.recs[c.Stream]; r != nil {
				r.SetMotion("camera", active, at)
			}
		},
		Event: func(kind string, c nvr.Camera, data map[string]string) {
			b.mu.Lock()
			b.events = append(b.events, event{kind, c.ID, time.Now(), data})
			b.mu.Unlock()
		},
		MinBackoff: 200 * time.Millisecond, MaxBackoff: time.Second,
		Timeout: 5 * time.Second,
		Logger:  slog.New(slog.NewTextHandler(&b.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if tweak != nil {
		tweak(&opts)
	}
	if b.m, err = nvr.Open(opts); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.cancel, b.done = cancel, make(chan struct{})
	go func() { b.m.Run(ctx); close(b.done) }()
	t.Cleanup(b.close)
	return b
}

func (b *nvrBox) close() {
	if b.cancel == nil {
		return
	}
	b.cancel()
	<-b.done
	b.m.Close()
	b.store.Close()
	b.cat.Close()
	b.cancel = nil
}

// secrets are the secrets the catalog keeps: the camd cameras' tokens
// and the RTSP passwords.
func (b *nvrBox) secrets(t *testing.T) []string {
	t.Helper()
	var out []string
	b.cat.View(func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte("nvr")).Bucket([]byte("cameras")).ForEach(func(_, v []byte) error {
			var r struct {
				Secret struct{ Token, Password string }
			}
			json.Unmarshal(v, &r)
			for _, s := range []string{r.Secret.Token, r.Secret.Password} {
				if s != "" {
					out = append(out, s)
				}
			}
			return nil
		})
	})
	return out
}

// noSecretLogged fails when the NVR's log shows a secret.
func (b *nvrBox) noSecretLogged(t *testing.T, secrets []string) {
	t.Helper()
	if len(secrets) == 0 {
		t.Fatal("no secret to look for")
	}
	logs := b.logs.String()
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("the log shows a secret:\n%s", logs)
		}
	}
}

// waitEvent waits for an event of kind about camera after since.
func (b *nvrBox) waitEvent(t *testing.T, kind, camera string, since time.Time, within time.Duration) event {
	t.Helper()
	var e event
	testenv.Eventually(t, fmt.Sprintf("a %s event for %s", kind, camera), func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, x := range b.events {
			if x.kind == kind && x.camera == camera && !x.at.Before(since) {
				e = x
				return true
			}
		}
		return false
	})
	// Judged by the event's own time, not by how soon a loaded machine
	// let this test see it.
	if !since.IsZero() && e.at.Sub(since) > within {
		t.Fatalf("%s event for %s %s after, want within %s", kind, camera, e.at.Sub(since).Round(time.Millisecond), within)
	}
	return e
}

// fragments is how many fragments the camera's recorder wrote.
func (b *nvrBox) fragments(stream uint32) uint64 {
	b.mu.Lock()
	r := b.recs[stream]
	b.mu.Unlock()
	if r == nil {
		return 0
	}
	return r.Stats().Fragments
}

// motion is the motion camera id reported, in order.
func (b *nvrBox) motion(id string) []bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.motions[id])
}

func (b *nvrBox) waitState(t *testing.T, id string, state nvr.State) nvr.Camera {
	t.Helper()
	var c nvr.Camera
	testenv.Eventually(t, fmt.Sprintf("camera %s %s", id, state), func() bool {
		c, _ = b.m.Get(id)
		return c.State == state
	})
	return c
}

// exportAndProbe exports the camera's recordings and has ffprobe decode
// them; it returns the decoded video frames.
func (b *nvrBox) exportAndProbe(t *testing.T, stream uint32, from time.Time) int {
	t.Helper()
	ffprobe := testenv.Tool(t, "ffprobe")
	path := b.export(t, stream, from)
	res, err := exec.Command(ffprobe, "-v", "error", "-count_frames", "-select_streams", "v:0",
		"-show_entries", "stream=codec_name,nb_read_frames", "-of", "csv=p=0", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe: %v\n%s", err, res)
	}
	var codec string
	var frames int
	fmt.Sscanf(strings.ReplaceAll(strings.TrimSpace(string(res)), ",", " "), "%s %d", &codec, &frames)
	if codec != "h264" || frames == 0 {
		t.Fatalf("ffprobe decoded %q", res)
	}
	return frames
}

// export writes the camera's recordings from from to now as MP4 and
// returns the file's path.
func (b *nvrBox) export(t *testing.T, stream uint32, from time.Time) string {
	t.Helper()
	c, err := b.store.Clip(stream, from, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	f, err := export.New(c)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	path := filepath.Join(t.TempDir(), fmt.Sprintf("stream-%d.mp4", stream))
	out, _ := os.Create(path)
	if _, err := io.Copy(out, f); err != nil {
		t.Fatal(err)
	}
	out.Close()
	return path
}

// freePort is a TCP port on loopback that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
