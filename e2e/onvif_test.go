package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/camd-project/camd/discovery/netnstest"
	"github.com/camd-project/camd/internal/testenv"
)

// Interop with independent ONVIF clients (docs/onvif.md): the npm
// `onvif` package (Node.js) and Debian's onvif-util (libonvif).

var onvifLine = regexp.MustCompile(`msg="camd: onvif serving" url=http://(\S+):(\d+)/onvif/device_service`)

// onvifAddr is the running camd's ONVIF host and port.
func (d *daemon) onvifAddr(t testing.TB) (string, string) {
	t.Helper()
	waitLog(t, d, "camd: onvif serving")
	m := onvifLine.FindStringSubmatch(d.log())
	if m == nil {
		t.Fatalf("no ONVIF URL in camd's log:\n%s", d.log())
	}
	return m[1], m[2]
}

// nodeONVIF runs e2e/testdata/onvif-client.js with the npm client; its
// lines come on the channel, which closes when it exits.
func nodeONVIF(t testing.TB, ctx context.Context, wrap func(*exec.Cmd) *exec.Cmd, args ...string) <-chan map[string]json.RawMessage {
	t.Helper()
	modules := testenv.Interop(t, "onvif")
	script, _ := filepath.Abs("testdata/onvif-client.js")
	cmd := wrap(exec.CommandContext(ctx, "node", append([]string{script}, args...)...))
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan map[string]json.RawMessage, 64)
	go func() {
		defer close(lines)
		s := bufio.NewScanner(stdout)
		s.Buffer(make([]byte, 1<<20), 1<<20)
		for s.Scan() {
			var m map[string]json.RawMessage
			if json.Unmarshal(s.Bytes(), &m) == nil {
				lines <- m
			}
		}
		cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		if t.Failed() {
			t.Logf("node stderr:\n%s", stderr.String())
		}
	})
	return lines
}

// nextLine waits for the next line that has key.
func nextLine(t testing.TB, lines <-chan map[string]json.RawMessage, key string, within time.Duration, v any) {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case m, ok := <-lines:
			if !ok {
				t.Fatalf("the ONVIF client ended before a %q line", key)
			}
			if e, ok := m["error"]; ok {
				t.Fatalf("the ONVIF client: %s", e)
			}
			if raw, ok := m[key]; ok {
				if err := json.Unmarshal(raw, v); err != nil {
					t.Fatalf("%s: %v: %s", key, err, raw)
				}
				return
			}
		case <-deadline:
			t.Fatalf("no %q line from the ONVIF client within %v", key, within)
		}
	}
}

func withCreds(uri, id, secret string) string {
	return strings.Replace(uri, "rtsp://", "rtsp://"+id+":"+secret+"@", 1)
}

func noWrap(c *exec.Cmd) *exec.Cmd { return c }

// TestInteropONVIFNode: the npm onvif client connects with a stream key
// (WS-UsernameToken digest), reads the device, its profile, the stream
// and snapshot URIs; ffprobe decodes the stream URI with the key's
// credentials; a motion event comes through PullMessages. A wrong
// password gets nothing.
func TestInteropONVIFNode(t *testing.T) {
	need(t, "node", "ffprobe")
	// A passthrough stream: no picture motion of its own, so the motion
	// the test triggers starts a span.
	cfg, err := os.ReadFile(rtspConfig(t, "640x360"))
	if err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, "--config", writeConfig(t, string(cfg)+"name: Front Door\nonvif: {listen: 127.0.0.1:0}\n"))
	id, secret, _ := d.streamKey(t, "nvr")
	host, port := d.onvifAddr(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	lines := nodeONVIF(t, ctx, noWrap, "info", host, port, id, secret)
	var info struct {
		Device   struct{ Manufacturer, Model, FirmwareVersion, SerialNumber string }
		Hostname struct{ Name string }
		Profiles []struct {
			Token, Name, Encoding string
			Resolution            struct{ Width, Height int }
		}
		Stream, Snapshot string
	}
	nextLine(t, lines, "info", 30*time.Second, &info)
	t.Logf("npm onvif: %+v", info)
	if info.Device.Manufacturer != "camd" || info.Device.SerialNumber != d.deviceID(t) || info.Hostname.Name != "front-door" {
		t.Errorf("device %+v, host name %q", info.Device, info.Hostname.Name)
	}
	if len(info.Profiles) != 1 || info.Profiles[0].Encoding != "H264" || info.Profiles[0].Resolution.Width != 640 || info.Profiles[0].Resolution.Height != 360 {
		t.Errorf("profiles %+v", info.Profiles)
	}
	rtsp := d.rtspURL(t, id, secret)
	if withCreds(info.Stream, id, secret) != rtsp {
		t.Errorf("stream URI %s, want %s without credentials", info.Stream, rtsp)
	}
	if info.Snapshot != "" {
		t.Errorf("snapshot URI %s of a passthrough stream without a snapshot command", info.Snapshot)
	}
	if stream, n := decodeFrames(t, withCreds(info.Stream, id, secret), "-rtsp_transport", "tcp"); stream != "h264,640,360" || n < 60 {
		t.Errorf("ffprobe of the stream URI: %s, %d frames", stream, n)
	}

	var sub struct{ Address string }
	nextLine(t, lines, "subscribed", 10*time.Second, &sub)
	var res *http.Response
	req, _ := http.NewRequest("POST", "https://"+d.addr+"/api/v1/motion", strings.NewReader(`{"cause": "onvif-test", "seconds": 1}`))
	req.Header.Set("Authorization", "Bearer "+d.token(t))
	req.Header.Set("Content-Type", "application/json")
	res, err = insecureClient().Do(req)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("POST /api/v1/motion: %v %v", res, err)
	}
	res.Body.Close()
	for {
		var e struct {
			Topic        string
			Source, Data map[string]any
		}
		nextLine(t, lines, "event", 20*time.Second, &e)
		t.Logf("event %+v", e)
		if e.Topic == "tns1:RuleEngine/CellMotionDetector/Motion" && fmt.Sprint(e.Data["IsMotion"]) == "true" {
			break
		}
	}

	wrong := nodeONVIF(t, ctx, noWrap, "info", host, port, id, "wrong-"+secret)
	for m := range wrong {
		if _, ok := m["info"]; ok {
			t.Fatal("a wrong password was let in")
		}
		if e, ok := m["error"]; ok {
			t.Logf("wrong password: %s", e)
		}
	}
}

// TestInteropONVIFDiscovery: in a second network namespace, onvif-util
// and the npm client find camd by WS-Discovery (XAddrs: its device
// service), onvif-util logs in with a stream key and reads the RTSP URI,
// which ffprobe decodes from there; a wrong password is refused.
func TestInteropONVIFDiscovery(t *testing.T) {
	need(t, "onvif-util", "node", "ffprobe")
	netnstest.Need(t)
	p := netnstest.NewPair(t)
	d := startInNetns(t, p.A, "--config", writeConfig(t, "name: Front Door\nrtsp: {listen: \":8554\", rtp_port: 0}\nonvif: {listen: \":8080\"}\n"+
		"video: {width: 640, height: 360, fps: 15}\n"))
	waitLog(t, d, "discovery: answering WS-Discovery probes")
	port := d.port(t)

	qr, err := exec.Command(filepath.Join(bin, "camd"), "qr", "--data", d.data).CombinedOutput()
	if err != nil {
		t.Fatalf("camd qr: %v\n%s", err, qr)
	}
	ql := strings.Split(strings.TrimSpace(string(qr)), "\n")
	store := filepath.Join(t.TempDir(), "credentials.json")
	if out, err := netnstest.Command(p.B, filepath.Join(bin, "camctl"), "pair", "--store", store, "--addr", p.AddrA+":"+port, "--name", "e2e", ql[len(ql)-1]).CombinedOutput(); err != nil {
		t.Fatalf("camctl pair: %v\n%s", err, out)
	}
	out, err := netnstest.Command(p.B, filepath.Join(bin, "camctl"), "users", "keys", "add", "--store", store, "--for", "nvr", "--json").Output()
	var key struct{ ID, Secret string }
	if err != nil || json.Unmarshal(out, &key) != nil || key.ID == "" {
		t.Fatalf("camctl users keys add: %v\n%s", err, out)
	}

	// The npm client's WS-Discovery probe.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	inB := func(c *exec.Cmd) *exec.Cmd {
		w := netnstest.Command(p.B, c.Path, c.Args[1:]...)
		return exec.CommandContext(ctx, w.Path, w.Args[1:]...)
	}
	var found []struct{ XAddrs, Scopes []string }
	nextLine(t, nodeONVIF(t, ctx, inB, "probe"), "found", 20*time.Second, &found)
	want := "http://" + p.AddrA + ":8080/onvif/device_service"
	if len(found) != 1 || len(found[0].XAddrs) == 0 || found[0].XAddrs[0] != want {
		t.Errorf("npm onvif probe found %+v, want XAddrs %s", found, want)
	}

	// onvif-util: discovers, logs in, reads the profiles and the URI.
	util := func(pass string) string {
		cmd := netnstest.Command(p.B, "onvif-util", "-u", key.ID, "-p", pass, p.AddrA)
		cmd.Stdin = strings.NewReader("get profiles\nget rtsp\nquit\n")
		out, err := cmd.CombinedOutput()
		t.Logf("onvif-util -p %.6s…: %v\n%s", pass, err, out)
		return string(out)
	}
	uri := "rtsp://" + p.AddrA + ":8554/live"
	if out := util(key.Secret); !strings.Contains(out, uri) {
		t.Fatalf("onvif-util did not print %s", uri)
	}
	probe := netnstest.Command(p.B, "ffprobe", "-v", "error", "-rtsp_transport", "tcp", "-i", withCreds(uri, key.ID, key.Secret),
		"-select_streams", "v:0", "-count_frames", "-read_intervals", "%+2", "-show_entries", "stream=codec_name,width,height", "-of", "csv=p=0")
	if out, err := probe.CombinedOutput(); err != nil || !strings.HasPrefix(strings.TrimSpace(string(out)), "h264,640,360") {
		t.Errorf("ffprobe in the other namespace: %v %s", err, out)
	}
	if out := util("wrong-" + key.Secret); strings.Contains(out, uri) {
		t.Errorf("onvif-util with a wrong password got the stream URI")
	}
}
