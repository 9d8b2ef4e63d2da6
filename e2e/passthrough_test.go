package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/camd-project/camd/media/passthrough"
	"github.com/camd-project/camd/media/whep"
)

// fixture encodes an H.264 Annex-B file with ffmpeg, as a camera SoC's
// hardware encoder would send it: no B-frames, a keyframe every gop frames.
func fixture(t testing.TB, dir, size string, fps, seconds, gop int, bitrate, profile string) string {
	t.Helper()
	path := filepath.Join(dir, "camera-"+size+"-"+profile+".h264")
	if _, err := os.Stat(path); err == nil {
		return path
	}
	args := []string{"-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=" + size + ":rate=" + strconv.Itoa(fps),
		"-t", strconv.Itoa(seconds), "-c:v", "libx264", "-profile:v", profile, "-pix_fmt", "yuv420p",
		"-b:v", bitrate, "-maxrate", bitrate, "-bufsize", bitrate,
		"-g", strconv.Itoa(gop), "-keyint_min", strconv.Itoa(gop), "-sc_threshold", "0", "-bf", "0",
		"-f", "h264", path}
	if out, err := exec.Command("ffmpeg", args...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	return path
}

func writeConfig(t testing.TB, yaml string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "camd.yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestChromiumPlaysPassthroughHighProfile(t *testing.T) {
	need(t, "ffmpeg", "chromium")
	file := fixture(t, t.TempDir(), "1280x720", 30, 4, 60, "2M", "high")
	d := startDaemon(t, "--config", writeConfig(t, "source: passthrough\npassthrough: {file: "+file+"}\n"))
	if !strings.Contains(d.log(), "source=file:") {
		t.Fatalf("camd did not start the passthrough source")
	}
	st := watch(t, browser(t), d.inviteLink(t), false)
	if st.Width != 1280 || st.Height != 720 {
		t.Errorf("decoded %dx%d, want 1280x720", st.Width, st.Height)
	}
	t.Logf("Chromium: first frame after %.0f ms, %d frames decoded", st.TTFFMs, st.FramesDecoded)
	d.stop()
}

// TestNotH264KeepsServing starts camd on a passthrough "file" that is not
// H.264: it logs why and keeps trying, and still answers health.
func TestNotH264KeepsServing(t *testing.T) {
	bogus := filepath.Join(t.TempDir(), "notes.txt")
	os.WriteFile(bogus, []byte(strings.Repeat("this is not a video\n", 5000)), 0o600)
	d := startDaemon(t, "--config", writeConfig(t, "source: passthrough\npassthrough: {file: "+bogus+"}\n"))
	waitLog(t, d, "not an Annex-B H.264 stream")
	if !strings.Contains(d.log(), "media: source failed; restarting") {
		t.Fatalf("no restart logged")
	}
	health(t, d)
	d.stop()
}

var (
	idrencOnce sync.Once
	idrencErr  error
)

// idrencBinary builds internal/cmd/idrenc (an encoder that makes an IDR on
// SIGUSR1) into bin once.
func idrencBinary(t testing.TB) string {
	t.Helper()
	path := filepath.Join(bin, "idrenc")
	idrencOnce.Do(func() {
		if out, err := exec.Command("go", "build", "-o", path, "../internal/cmd/idrenc").CombinedOutput(); err != nil {
			idrencErr = fmt.Errorf("building idrenc: %v\n%s", err, out)
		}
	})
	if idrencErr != nil {
		t.Fatal(idrencErr)
	}
	return path
}

// idrencConfig is camd's configuration for a passthrough source that is
// idrenc with its arguments, asked for keyframes by a signal.
func idrencConfig(t testing.TB, args ...string) string {
	argv := append([]string{idrencBinary(t)}, args...)
	return fmt.Sprintf("source: passthrough\npassthrough: {command: [%s], keyframe_command: [sh, -c, 'kill -USR1 \"$%s\"']}\n",
		strings.Join(argv, ", "), passthrough.SourcePIDEnv)
}

// TestPassthroughKeyframeCommand: a passthrough source whose encoder can
// be asked for a keyframe (passthrough.keyframe_command). The encoder
// makes one IDR in ten minutes by itself. A viewer that joins gets the
// cached group of pictures first (its first picture at once), replayed
// here at 1 Mbps so that the whole of it would take seconds, and leaves it
// for the keyframe camd asked for as soon as that comes.
func TestPassthroughKeyframeCommand(t *testing.T) {
	d := startDaemon(t, "--config", writeConfig(t, idrencConfig(t, "-width", "320", "-height", "240", "-gop", "10m")+
		"live: {replay_bitrate: 1000000}\n"))
	ctx := t.Context()
	endpoint := "https://" + d.addr + "/api/v1/whep"
	// A first viewer makes sure the stream runs; its own request starts
	// a group of pictures that is 90 frames long when it leaves.
	if _, err := whep.View(ctx, endpoint, whep.ViewOptions{HTTPClient: insecureClient(), Header: d.viewHeader(t), Frames: 90}); err != nil {
		t.Fatal(err)
	}
	var keys []uint64
	var n uint64
	st, err := whep.View(ctx, endpoint, whep.ViewOptions{HTTPClient: insecureClient(), Header: d.viewHeader(t), Frames: 150,
		OnVideo: func(_ []byte, _ uint32, key bool) {
			n++
			if key {
				keys = append(keys, n)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("first frame %v; keyframes at frames %v of %d", st.FirstFrame, keys, st.FramesReceived)
	// Replayed whole, the group would take 90 frames or more before
	// the next keyframe; 30 frames of it take 2 s at 1 Mbps.
	if len(keys) < 2 || keys[0] != 1 || keys[1] > 30 {
		t.Fatalf("keyframes at frames %v of %d: want the cached one first, then within 30 frames the one asked for", keys, st.FramesReceived)
	}
	if !strings.Contains(d.log(), "idrenc") || strings.Contains(d.log(), "keyframe command failed") {
		t.Fatalf("camd's log:\n%s", d.log())
	}
	d.stop()
}
