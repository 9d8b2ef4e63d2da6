package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"image/jpeg"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/camd-project/camd/storage"
	"github.com/camd-project/camd/storage/volume"
)

// recConfig writes a camd configuration for recording tests: the
// synthetic camera at 640x480 (cheap enough for many restarts) plus extra.
func recConfig(t testing.TB, extra string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "camd.yaml")
	if err := os.WriteFile(path, []byte("video: {width: 640, height: 480}\n"+extra), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

type span struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

type timelineAnswer struct {
	Spans    []span  `json:"spans"`
	Gaps     []span  `json:"gaps"`
	Recorded float64 `json:"recorded_s"`
	Status   struct {
		Quarantined int    `json:"quarantined"`
		Paused      string `json:"paused"`
		Volumes     int    `json:"volumes"`
		Bytes       int64  `json:"bytes"`
	} `json:"status"`
}

// api makes an authorized GET with the owner's credential.
func (d *daemon) api(t testing.TB, path string, out any) int {
	t.Helper()
	req, _ := http.NewRequest("GET", "https://"+d.addr+path, nil)
	req.Header.Set("Authorization", "Bearer "+d.token(t))
	resp, err := insecureClient().Do(req)
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

// recorded waits until the timeline holds at least secs of recording
// ending after since.
func recorded(t testing.TB, d *daemon, secs float64, since time.Time) timelineAnswer {
	t.Helper()
	deadline := time.Now().Add(30*time.Second + time.Duration(secs*float64(time.Second)))
	for {
		var tl timelineAnswer
		code := d.api(t, "/api/v1/recordings?from=-1h", &tl)
		if n := len(tl.Spans); code == 200 && tl.Recorded >= secs && n > 0 && tl.Spans[n-1].End.After(since) {
			return tl
		}
		if time.Now().After(deadline) {
			t.Fatalf("recorded %.1f s of %.1f (%d): %+v", tl.Recorded, secs, code, tl)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestCamctlExportsRecordingsAndSnapshots(t *testing.T) {
	need(t, "ffprobe", "ffmpeg")
	d := startDaemon(t, "--config", recConfig(t, ""))
	tl := recorded(t, d, 7, time.Time{})
	last := tl.Spans[len(tl.Spans)-1]
	from, to := last.End.Add(-5*time.Second), last.End.Add(-1*time.Second)
	dir := t.TempDir()
	mp4 := filepath.Join(dir, "clip.mp4")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := camctl(t, ctx, "recordings", "export", "--store", d.store, "--quiet",
		"--from", from.Format(time.RFC3339Nano), "--to", to.Format(time.RFC3339Nano), "--out", mp4)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "wrote") {
		t.Fatalf("camctl: %s", out)
	}
	streams := ffprobe(t, mp4, "-show_entries", "stream=codec_type,codec_name,width,height", "-of", "csv=p=0")
	if !strings.Contains(streams, "h264,video,640,480") || !strings.Contains(streams, "opus,audio") {
		t.Fatalf("streams:\n%s", streams)
	}
	dur, _ := strconv.ParseFloat(ffprobe(t, mp4, "-show_entries", "format=duration", "-of", "csv=p=0"), 64)
	// The file starts at the keyframe at or before from and ends with the
	// fragment that holds to: within one fragment (under 1 s) each side.
	if want := to.Sub(from).Seconds(); dur < want-0.05 || dur > want+2 {
		t.Fatalf("duration %.2f s for a %.0f s range", dur, want)
	}
	if msg, err := exec.Command("ffmpeg", "-v", "error", "-i", mp4, "-f", "null", "-").CombinedOutput(); err != nil || len(strings.TrimSpace(string(msg))) > 0 {
		t.Fatalf("the export does not decode cleanly: %v\n%s", err, msg)
	}
	t.Logf("exported %.0f s range: %.2f s of h264 + opus", to.Sub(from).Seconds(), dur)

	// The same range played back over WebRTC: camctl view --from gets it
	// in real time (the session ends with the range) and ffprobe decodes
	// what it wrote.
	h264 := filepath.Join(dir, "played.h264")
	ogg := filepath.Join(dir, "played.ogg")
	start := time.Now()
	out, err = camctl(t, ctx, "view", "--store", d.store, "--seconds", "20", "--video", h264, "--audio", ogg,
		"--from", from.Format(time.RFC3339Nano), "--to", to.Format(time.RFC3339Nano))
	if err != nil {
		t.Fatalf("camctl view --from: %v\n%s", err, out)
	}
	if took := time.Since(start); took > 15*time.Second {
		t.Errorf("playing a 4 s range took %v: the session did not end with it", took)
	}
	frames, _ := strconv.Atoi(ffprobe(t, h264, "-count_frames", "-select_streams", "v:0", "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0"))
	if frames < 4*25 || !strings.Contains(out, "frames lost      0") || !strings.Contains(out, "resolution       640x480") {
		t.Fatalf("played back %d decodable frames of a 4 s range:\n%s", frames, out)
	}
	if !strings.Contains(ffprobe(t, ogg, "-show_entries", "stream=codec_name", "-of", "csv=p=0"), "opus") {
		t.Fatal("no Opus audio in the playback")
	}
	t.Logf("played back over WebRTC: %d frames decoded by ffprobe", frames)

	if out, err = camctl(t, ctx, "recordings", "list", "--store", d.store, "--from", "-10m"); err != nil || !strings.Contains(out, "recorded") {
		t.Fatalf("recordings list: %v\n%s", err, out)
	}
	// Snapshots: now, saved, listed, fetched, deleted.
	jpg := filepath.Join(dir, "now.jpg")
	if _, err := camctl(t, ctx, "snapshot", "--store", d.store, "--out", jpg); err != nil {
		t.Fatal(err)
	}
	checkJPEG(t, jpg, 640, 480)
	out, err = camctl(t, ctx, "snapshot", "--store", d.store, "--save", "--out", jpg)
	if err != nil {
		t.Fatal(err)
	}
	id := regexp.MustCompile(`saved on the camera as ([0-9a-f]{16})`).FindStringSubmatch(out)
	if id == nil {
		t.Fatalf("snapshot --save: %s", out)
	}
	if out, _ = camctl(t, ctx, "snapshot", "list", "--store", d.store); !strings.Contains(out, id[1]) {
		t.Fatalf("list lacks %s:\n%s", id[1], out)
	}
	got := filepath.Join(dir, "got.jpg")
	if _, err := camctl(t, ctx, "snapshot", "get", id[1], "--store", d.store, "--out", got); err != nil {
		t.Fatal(err)
	}
	checkJPEG(t, got, 640, 480)
	if _, err := camctl(t, ctx, "snapshot", "delete", id[1], "--store", d.store); err != nil {
		t.Fatal(err)
	}
	if _, err := camctl(t, ctx, "snapshot", "get", id[1], "--store", d.store, "--out", got); err == nil {
		t.Fatal("a deleted snapshot was fetched")
	}
	// A bad range is refused with a reason.
	if _, err := camctl(t, ctx, "recordings", "export", "--store", d.store, "--from", "now", "--to", "-1h", "--out", mp4); err == nil ||
		!strings.Contains(err.Error(), "400") {
		t.Fatalf("reversed range: %v", err)
	}
}

func checkJPEG(t testing.TB, path string, w, h int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := jpeg.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if b := img.Bounds(); b.Dx() != w || b.Dy() != h {
		t.Fatalf("%s is %v, want %dx%d", path, b, w, h)
	}
}

// kill9 kills camd with SIGKILL and waits until it is gone.
func (d *daemon) kill9(t testing.TB) time.Time {
	at := time.Now()
	d.cmd.Process.Kill()
	<-d.done
	return at
}

// checkFiles runs bbolt's consistency check on the catalog and every
// volume, as a crashed camd left them.
func checkFiles(t testing.TB, data string) {
	t.Helper()
	cat, err := storage.OpenCatalog(filepath.Join(data, "catalog.db"), storage.CatalogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cat.Quarantined != "" {
		t.Fatal("the catalog was damaged by a kill")
	}
	if err := cat.Check(); err != nil {
		t.Fatal(err)
	}
	cat.Close()
	vols, _ := filepath.Glob(filepath.Join(data, "recordings", "vol-*.db"))
	if len(vols) == 0 {
		t.Fatal("no volumes")
	}
	for _, v := range vols {
		if err := volume.Check(v, volume.Options{}); err != nil {
			t.Fatalf("after kill -9: %v", err)
		}
	}
}

// TestKillDuringRecording kills camd with SIGKILL while it records, over
// and over: every restart opens cleanly, the files pass bbolt's
// consistency check, and the recording ends at most 1 s before the kill.
// CAMD_KILLS sets the number of kills (20 by default); the benchmark
// script runs BenchmarkKill9 with 100.
func TestKillDuringRecording(t *testing.T) {
	kills := 20
	if n, err := strconv.Atoi(os.Getenv("CAMD_KILLS")); err == nil && n > 0 {
		kills = n
	}
	if testing.Short() {
		kills = 3
	}
	lags := killLoop(t, kills)
	t.Logf("%d kills: the recording ended at worst %v before the kill (all: %v)", kills, slices.Max(lags), lags)
}

// BenchmarkKill9 is the kill loop with b.N kills (-benchtime 100x).
func BenchmarkKill9(b *testing.B) {
	lags := killLoop(b, b.N)
	b.ReportMetric(float64(slices.Max(lags).Milliseconds()), "worst_loss_ms")
	sum := time.Duration(0)
	for _, l := range lags {
		sum += l
	}
	b.ReportMetric(float64((sum / time.Duration(len(lags))).Milliseconds()), "mean_loss_ms")
}

func killLoop(t testing.TB, kills int) []time.Duration {
	cfg := recConfig(t, "recording: {volume_size: 4MiB}\n")
	data := t.TempDir()
	d := startAt(t, data, "", "--config", cfg)
	store := d.store
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 4))
	var lags []time.Duration
	started := time.Now()
	for i := range kills {
		// Record for a while (at least one fragment), then kill at a
		// random moment within a fragment.
		recorded(t, d, 0, started.Add(900*time.Millisecond))
		time.Sleep(time.Duration(rng.IntN(1500)) * time.Millisecond)
		killedAt := d.kill9(t)
		checkFiles(t, data)

		started = time.Now()
		d = startAt(t, data, store, "--config", cfg)
		var tl timelineAnswer
		d.api(t, "/api/v1/recordings?from=-1h", &tl)
		if tl.Status.Quarantined != 0 || strings.Contains(d.log(), "quarantined") || strings.Contains(d.log(), "damaged") {
			t.Fatalf("kill %d: the restart found damage:\n%s", i, d.log())
		}
		// The end of the recording made before the kill.
		var end time.Time
		for _, s := range tl.Spans {
			if s.End.Before(started) && s.End.After(end) {
				end = s.End
			}
		}
		lag := killedAt.Sub(end)
		lags = append(lags, lag)
		if lag > time.Second {
			t.Errorf("kill %d: the recording ends %v before the kill", i, lag)
		}
	}
	d.stop()
	checkFiles(t, data)
	return lags
}

// recState mirrors window.camdRec in the web page.
type recState struct {
	Spans   int     `json:"spans"`
	PlayedS float64 `json:"playedS"`
	Error   string  `json:"error"`
}

func (s recState) pageError() string { return s.Error }

func TestBrowserShowsTimelineAndPlaysARecording(t *testing.T) {
	d := startDaemon(t, "--config", recConfig(t, ""))
	tl := recorded(t, d, 5, time.Time{})
	ctx := browser(t)
	watch(t, ctx, d.inviteLink(t), false) // pairs the browser
	last := tl.Spans[len(tl.Spans)-1]
	start, end := last.End.Add(-4*time.Second).Format(time.RFC3339Nano), last.End.Format(time.RFC3339Nano)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`window.camdRecPlay(%q, %q)`, start, end))); err != nil {
		t.Fatal(err)
	}
	pollPage(t, ctx, `window.camdRec`, func(st recState) bool { return st.PlayedS > 1.5 })
	vw, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.getElementById("playback").videoWidth`))
	if vw != 640 {
		t.Fatalf("playback video is %d wide", vw)
	}
	// The same span played back over WebRTC in the live player: Chromium
	// decodes the recording's pictures, with its audio.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`window.camdRecWatch(%q, %q)`, start, end))); err != nil {
		t.Fatal(err)
	}
	st := pollPage(t, ctx, `window.camd`, func(st viewerState) bool {
		return st.Watching != "live" && st.FramesDecoded > 30 && st.AudioPackets > 20
	})
	if st.Width != 640 || st.Height != 480 {
		t.Fatalf("the recording played over WebRTC at %dx%d", st.Width, st.Height)
	}
	t.Logf("recording over WebRTC: %d frames decoded, %d audio packets, first frame after %.0f ms", st.FramesDecoded, st.AudioPackets, st.TTFFMs)

	// The timeline bar shows the recording.
	spans, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`(async () => { document.getElementById("recRefresh").click(); await new Promise(r => setTimeout(r, 500)); return document.querySelectorAll("#recBar .span").length })()`,
		chromedp.EvalAwaitPromise))
	if spans < 1 {
		t.Fatal("the timeline bar shows no recording")
	}
}
