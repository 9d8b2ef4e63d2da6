package rtsp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/camd-project/camd/internal/testenv"
	"github.com/camd-project/camd/media"
	"github.com/camd-project/camd/media/encoder"
	"github.com/camd-project/camd/media/synthetic"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// keys is a fake key store: each user name is a key with a secret,
// revocable.
type keys struct {
	mu      sync.Mutex
	secrets map[string]string
}

func (k *keys) verify(user string, proof func(string) bool) (string, error) {
	k.mu.Lock()
	secret, ok := k.secrets[user]
	k.mu.Unlock()
	if !ok || !proof(secret) {
		return "", errors.New("unknown or revoked key")
	}
	return "key:" + user, nil
}

func (k *keys) revoke(user string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.secrets, user)
}

// live is a running synthetic camera behind an RTSP server.
type live struct {
	hub  *media.Hub
	srv  *Server
	keys *keys
	url  func(user, secret string) string
}

func startLive(t testing.TB, opts Options) *live {
	t.Helper()
	src, err := synthetic.New(synthetic.Options{Video: encoder.H264Options{Width: 320, Height: 240, FPS: 15}, G711: true})
	if err != nil {
		t.Fatal(err)
	}
	hub := media.NewHub(media.HubOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { media.Supervise(ctx, src, hub, media.SuperviseOptions{}); close(done) }()
	k := &keys{secrets: map[string]string{"k1": "s3cret", "k2": "other"}}
	opts.Address = "127.0.0.1:0"
	if opts.RTPPort == 0 {
		opts.RTPPort = testenv.FreeRTPPort(t)
	}
	opts.Verify = k.verify
	srv, err := New(hub, opts)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Close()
		cancel()
		<-done
		hub.Close()
	})
	l := &live{hub: hub, srv: srv, keys: k}
	l.url = func(user, secret string) string {
		cred := ""
		if user != "" {
			cred = user + ":" + secret + "@"
		}
		return "rtsp://" + cred + srv.Addr().String() + "/live"
	}
	return l
}

// probed is what ffprobe decoded of each stream.
type probed struct {
	Streams []struct {
		CodecName    string `json:"codec_name"`
		CodecType    string `json:"codec_type"`
		Width        int    `json:"width"`
		SampleRate   string `json:"sample_rate"`
		NbReadFrames string `json:"nb_read_frames"`
	} `json:"streams"`
}

// probe decodes 3 s of the stream at url with ffprobe over transport.
func probe(t testing.TB, url, transport string) (probed, string, error) {
	t.Helper()
	ffprobe := testenv.Tool(t, "ffprobe")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, ffprobe, "-v", "error", "-rtsp_transport", transport, "-count_frames",
		"-read_intervals", "%+3", "-show_entries", "stream=codec_name,codec_type,width,sample_rate,nb_read_frames", "-of", "json", url)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var p probed
	if err == nil {
		err = json.Unmarshal([]byte(out.String()), &p)
	}
	return p, errOut.String(), err
}

// TestFFprobeDecodesOverTCPAndUDP: ffprobe authenticates with a stream
// key (digest) and decodes H.264, Opus and G.711 µ-law over both
// transports.
func TestFFprobeDecodesOverTCPAndUDP(t *testing.T) {
	l := startLive(t, Options{})
	for _, transport := range []string{"tcp", "udp"} {
		t.Run(transport, func(t *testing.T) {
			p, stderr, err := probe(t, l.url("k1", "s3cret"), transport)
			if err != nil {
				t.Fatalf("ffprobe: %v\n%s", err, stderr)
			}
			got := map[string]string{}
			for _, s := range p.Streams {
				got[s.CodecName] = s.NbReadFrames
				if s.CodecName == "h264" && s.Width != 320 {
					t.Errorf("width %d", s.Width)
				}
			}
			t.Logf("frames decoded in 3 s: %v", got)
			// 3 s: about 45 pictures and 150 audio packets.
			for codec, least := range map[string]int{"h264": 20, "opus": 50, "pcm_mulaw": 50} {
				var n int
				fmt.Sscan(got[codec], &n)
				if n < least {
					t.Errorf("%s: %q frames decoded, want at least %d (streams %+v)\n%s", codec, got[codec], least, p.Streams, stderr)
				}
			}
		})
	}
}

// TestWrongCredentialsAre401: no credentials, a wrong secret, an unknown
// key, and Basic (which would send the key in clear) are refused.
func TestWrongCredentialsAre401(t *testing.T) {
	l := startLive(t, Options{})
	for name, url := range map[string]string{
		"none":         l.url("", ""),
		"wrong secret": l.url("k1", "wrong"),
		"unknown key":  l.url("k9", "s3cret"),
		"other's":      l.url("k1", "other"),
	} {
		if _, stderr, err := probe(t, url, "tcp"); err == nil || !strings.Contains(stderr, "401") {
			t.Errorf("%s: %v %s", name, err, stderr)
		}
	}
	if st := l.srv.Stats(); len(st.Sessions) != 0 || st.Served != 0 {
		t.Fatalf("sessions after refusals: %+v", st)
	}
}

// TestRevokedKeyEndsItsSessions: EndUser ends an open session of a key
// (the session guard calls it when the key is revoked), and the revoked
// key no longer opens one.
func TestRevokedKeyEndsItsSessions(t *testing.T) {
	l := startLive(t, Options{})
	ffmpeg := testenv.Tool(t, "ffmpeg")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, ffmpeg, "-v", "error", "-rtsp_transport", "tcp", "-i", l.url("k1", "s3cret"), "-f", "null", "-")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	testenv.Eventually(t, "one session past ten frames", func() bool {
		s := l.srv.Stats().Sessions
		return len(s) == 1 && s[0].Frames > 10
	})
	l.keys.revoke("k1")
	if n := l.srv.EndUser("key:k1", "revoked"); n != 1 {
		t.Fatalf("ended %d sessions", n)
	}
	select {
	case <-exited: // ffmpeg saw the end of the stream
	case <-time.After(20 * time.Second):
		t.Fatalf("ffmpeg still running 20 s after its session ended\n%s", stderr.String())
	}
	testenv.Eventually(t, "no session", func() bool { return len(l.srv.Stats().Sessions) == 0 })
	if _, stderr, err := probe(t, l.url("k1", "s3cret"), "tcp"); err == nil || !strings.Contains(stderr, "401") {
		t.Fatalf("a revoked key: %v %s", err, stderr)
	}
}
