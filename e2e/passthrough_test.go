package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
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
