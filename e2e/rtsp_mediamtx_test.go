package e2e

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/camd-project/camd/internal/testenv"
)

// TestInteropMediaMTXRecordsRTSP: MediaMTX v1.20.1 pulls camd's live
// stream over RTSP (TCP, digest with a stream key) and records it as
// fragmented MP4; ffprobe decodes every picture of the recording's
// H.264 and finds its Opus track (and the G.711 track, which MediaMTX
// stores as PCM).
func TestInteropMediaMTXRecordsRTSP(t *testing.T) {
	need(t, "ffprobe")
	tool := testenv.Interop(t, "mediamtx")
	d := startDaemon(t, "--config", writeConfig(t, "rtsp: {listen: 127.0.0.1:0, rtp_port: 0}\nvideo: {width: 640, height: 360, fps: 15}\n"))
	id, secret, _ := d.streamKey(t, "mediamtx")
	src := d.rtspURL(t, id, secret)

	dir := t.TempDir()
	conf := fmt.Sprintf(`logLevel: debug
api: false
rtmp: false
hls: false
webrtc: false
srt: false
moq: false
rtspAddress: 127.0.0.1:%d
paths:
  cam:
    source: %s
    rtspTransport: tcp
    record: yes
    recordPath: %s/%%path/%%Y-%%m-%%d_%%H-%%M-%%S-%%f
    recordFormat: fmp4
    recordPartDuration: 500ms
    recordSegmentDuration: 1h
`, freePort(t), src, dir)
	_, stop := startMediaMTX(t, tool, dir, conf)

	// Until about 4 s of recording are on disk (15 fps: 60 pictures).
	var file string
	deadline := time.Now().Add(40 * time.Second)
	for {
		files, _ := filepath.Glob(filepath.Join(dir, "cam", "*.mp4"))
		if len(files) > 0 {
			file = files[0]
			if n := recordedFrames(file); n >= 60 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("MediaMTX recorded no 60 pictures within 40 s (files %v)", files)
		}
		time.Sleep(200 * time.Millisecond)
	}
	stop()
	out := ffprobe(t, file, "-select_streams", "v:0", "-count_frames",
		"-show_entries", "stream=codec_name,width,height,nb_read_frames", "-of", "csv=p=0")
	f := strings.Split(strings.TrimSpace(out), ",")
	var n int
	if len(f) == 4 {
		fmt.Sscan(f[3], &n)
	}
	stream := strings.Join(f[:min(3, len(f))], ",")
	if stream != "h264,640,360" || n < 60 {
		t.Errorf("the recording: %s, %d pictures decoded", stream, n)
	}
	audio := ffprobe(t, file, "-select_streams", "a", "-show_entries", "stream=codec_name", "-of", "csv=p=0")
	if !strings.Contains(audio, "opus") {
		t.Errorf("the recording's audio: %q, want an Opus track", audio)
	}
	t.Logf("MediaMTX recorded %s from camd's RTSP: %s, %d pictures; audio %q", filepath.Base(file), stream, n, strings.TrimSpace(audio))
	if !strings.Contains(d.log(), "rtsp: session playing") {
		t.Errorf("camd saw no RTSP session")
	}
}

// recordedFrames counts the video pictures ffprobe reads from a
// recording being written (0 while it cannot read it yet).
func recordedFrames(file string) int {
	// Decoded pictures, as the test asserts below: packets counted more
	// (a recording's first packets may not decode), and the wait ended
	// before the recording held 60 pictures that decode.
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-count_frames",
		"-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", file).Output()
	if err != nil {
		return 0
	}
	var n int
	fmt.Sscan(strings.TrimSpace(string(out)), &n)
	return n
}
