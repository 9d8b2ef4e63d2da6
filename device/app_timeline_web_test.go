package device

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/camd-project/camd/internal/testenv"
	"github.com/camd-project/camd/storage/recordings"
	"github.com/camd-project/camd/storage/snapshots"
)

// The owner's app's timeline, events and live controls (docs/app.md) in
// headless Chromium.

// jsTime is a time as the page's JavaScript writes it (milliseconds).
func jsTime(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

// fromJS reads a time the page gives in milliseconds.
func fromJS(ms float64) time.Time { return time.UnixMilli(int64(ms)) }

// gesture makes an evaluation count as the user's (fullscreen needs one).
func gesture(p *runtime.EvaluateParams) { p.UserGesture = new(true) }

// recState is window.camdRec.
type recState struct {
	Spans       int     `json:"spans"`
	Tapped      float64 `json:"tapped"`
	Playhead    float64 `json:"playhead"`
	WindowStart float64 `json:"windowStart"`
	PlayedS     float64 `json:"playedS"`
	Error       string  `json:"error"`
	Export      struct {
		Received, Total int64
		Outcome         string
	} `json:"export"`
}

// tapAt taps the timeline bar where it shows at and returns the time
// the page took from the tap.
func tapAt(t *testing.T, ctx context.Context, at time.Time) time.Time {
	t.Helper()
	js := `(() => { const b = document.getElementById("recBar"), r = b.getBoundingClientRect(), v = camdRec.view;
		const x = r.left + ((` + jsTime(at) + ` - v.from) / (v.to - v.from)) * r.width;
		b.dispatchEvent(new MouseEvent("click", {bubbles: true, clientX: x, clientY: r.top + r.height * 0.75}));
		return camdRec.tapped })()`
	return fromJS(eval[float64](t, ctx, js))
}

// TestAppTimelinePlaysFromATap: a tap anywhere on the day's bar plays
// the recording from that time (not from the start or the last minutes
// of its stretch), the playhead follows the video, the next event moves
// it to the motion recorded after it, and a range chosen is exported
// with its progress to a file that is a valid MP4.
func TestAppTimelinePlaysFromATap(t *testing.T) {
	ffprobe := testenv.Tool(t, "ffprobe")
	d := running(t, syntheticSource, func(c *Config) { c.Calls.RingTimeout = 5 * time.Second })
	token := owner(t, d)
	// A call nobody answers: missed 5 s after it rang, with the
	// recording going on.
	waitRecorded(t, d, token, 3)
	ring(t, d, token)
	var missed []struct{ Time time.Time }
	for deadline := time.Now().Add(20 * time.Second); len(missed) == 0; time.Sleep(100 * time.Millisecond) {
		if _, b := call(t, d, "GET", "/api/v1/events?type=call.missed", token, nil); json.Unmarshal(b, &missed) != nil || time.Now().After(deadline) {
			t.Fatalf("no missed call: %s", b)
		}
	}
	event := missed[0].Time
	span := recordedUntil(t, d, token, event.Add(2*time.Second))

	ctx := appPage(t, d, token, "#timeline")
	waitPage(t, ctx, "the day's recordings and the missed call", `camdRec.spans > 0 && camdRec.markers.some((m) => m.type === "call.missed") && document.querySelector("#recBar .marker.missed")`)
	if day := eval[string](t, ctx, `camdRec.day`); day != time.Now().Format("2006-01-02") {
		t.Errorf("the timeline shows %s, want today", day)
	}
	eval[bool](t, ctx, `(() => { const z = document.getElementById("tlZoom"); z.value = "10"; z.dispatchEvent(new Event("change")); return true })()`)

	// A tap 3 s before the missed call, well inside the stretch: the
	// video plays from there (seconds a pixel apart at this zoom).
	want := event.Add(-3 * time.Second)
	if want.Before(span.Start.Add(2 * time.Second)) {
		t.Fatalf("the stretch starts at %v, the missed call at %v", span.Start, event)
	}
	tapped := tapAt(t, ctx, want)
	if d := tapped.Sub(want).Abs(); d > 2*time.Second {
		t.Fatalf("a tap at %v plays from %v", want, tapped)
	}
	waitPage(t, ctx, "the playback", `camdRec.playedS > 0.5 && !document.getElementById("playback").paused`)
	st := eval[recState](t, ctx, `camdRec`)
	ws := fromJS(st.WindowStart)
	if ws.After(tapped) || tapped.Sub(ws) > 3*time.Second {
		t.Errorf("the window played starts at %v for a tap at %v (keyframes 2 s apart)", ws, tapped)
	}
	if !ws.After(span.Start) {
		t.Errorf("the playback starts at the stretch's start %v, not at the tap %v", span.Start, tapped)
	}
	// The playhead is the tap plus what has played.
	if lag := fromJS(st.Playhead).Sub(tapped).Seconds() - st.PlayedS; math.Abs(lag) > 0.5 {
		t.Errorf("the playhead is %.2f s off the tap plus %.2f s played", lag, st.PlayedS)
	}
	if eval[bool](t, ctx, `document.getElementById("playhead").hidden`) {
		t.Error("the playhead is not on the bar")
	}

	// The next event: the first marker after the playhead.
	nextAt := fromJS(eval[float64](t, ctx, `camdRec.markers.find((m) => m.time > camdRec.playhead + 500).time`))
	eval[bool](t, ctx, `document.getElementById("tlNextEvent").click(), true`)
	waitPage(t, ctx, "the playhead at the next event", `camdRec.tapped === `+jsTime(nextAt)+` && camdRec.playedS > 0.3`)
	if head := fromJS(eval[float64](t, ctx, `camdRec.playhead`)); head.Before(nextAt) || head.Sub(nextAt) > 2*time.Second {
		t.Errorf("after next event the playhead is at %v, the event at %v", head, nextAt)
	}
	if nextAt.After(event.Add(time.Millisecond)) {
		t.Errorf("next event went to %v, past the missed call at %v", nextAt, event)
	}

	// A tap on the markers' row, a few pixels beside the missed call's
	// mark, plays from the missed call's time.
	missedAt := eval[float64](t, ctx, `(() => { const b = document.getElementById("recBar"), r = b.getBoundingClientRect(), v = camdRec.view;
		const m = camdRec.markers.find((m) => m.type === "call.missed");
		const x = r.left + ((m.time - v.from) / (v.to - v.from)) * r.width + 5;
		b.dispatchEvent(new MouseEvent("click", {bubbles: true, clientX: x, clientY: r.top + 2}));
		return m.time })()`)
	if tapped := eval[float64](t, ctx, `camdRec.tapped`); tapped != missedAt {
		t.Errorf("a tap beside the missed call's mark plays from %v, want the missed call's %v", fromJS(tapped), fromJS(missedAt))
	}

	// Export 5 s of the stretch: the progress reaches the whole file, the
	// outcome is a sentence, and the file saved is an MP4 of about 5 s.
	from := span.Start.Add(2 * time.Second).Truncate(time.Second).Add(time.Second)
	hhmmss := func(t time.Time) string { return strconv.Quote(t.Local().Format("15:04:05")) }
	eval[bool](t, ctx, `document.getElementById("exFrom").value = `+hhmmss(from)+`, document.getElementById("exTo").value = `+hhmmss(from.Add(5*time.Second))+`, document.getElementById("exGo").click(), true`)
	waitPage(t, ctx, "the export", `camdRec.export && camdRec.export.outcome`)
	st = eval[recState](t, ctx, `camdRec`)
	if st.Export.Total == 0 || st.Export.Received != st.Export.Total || !strings.HasPrefix(st.Export.Outcome, "Exported ") {
		t.Fatalf("export: %+v", st.Export)
	}
	if p := eval[float64](t, ctx, `document.getElementById("exProgress").value`); p != 1 {
		t.Errorf("the progress bar ends at %v", p)
	}
	dir := t.TempDir()
	if _, err := chromedp.Run(ctx, func(ctx context.Context, tg *chromedp.Target) (cdp.Empty, error) {
		return cdp.Call(ctx, tg, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dir})
	}); err != nil {
		t.Fatal(err)
	}
	name := eval[string](t, ctx, `(() => { const a = document.getElementById("recDownload"); a.click(); return a.download })()`)
	file := filepath.Join(dir, name)
	waitFile(t, file, st.Export.Total)
	out, err := exec.Command(ffprobe, "-v", "error", "-show_entries", "stream=codec_name:format=format_name,duration", "-of", "json", file).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", file, err)
	}
	var probe struct {
		Streams []struct {
			CodecName string `json:"codec_name"`
		}
		Format struct {
			FormatName string `json:"format_name"`
			Duration   string
		}
	}
	json.Unmarshal(out, &probe)
	secs, _ := strconv.ParseFloat(probe.Format.Duration, 64)
	if !strings.Contains(probe.Format.FormatName, "mp4") || len(probe.Streams) == 0 || probe.Streams[0].CodecName != "h264" || secs < 4 || secs > 8 {
		t.Errorf("the file exported: %s", out)
	}

	// The day before, while today's recording plays: nothing recorded,
	// said so, and the bar stays on that day as the playhead moves on
	// (only playing past midnight moves to the next day); and back.
	eval[bool](t, ctx, `camdRecPlay(new Date(Date.now() - 8000).toISOString()), true`)
	waitPage(t, ctx, "playing", `!document.getElementById("playback").paused && camdRec.playhead !== null`)
	eval[bool](t, ctx, `document.getElementById("tlPrevDay").click(), window.headAtPrev = camdRec.playhead, true`)
	yesterday := time.Now().AddDate(0, 0, -1).Format("2006-01-02")
	waitPage(t, ctx, "yesterday", `camdRec.day === "`+yesterday+`" && camdRec.spans === 0 && document.getElementById("tlAt").textContent === "Nothing recorded on this day."`)
	waitPage(t, ctx, "the playhead moving on", `camdRec.playhead > window.headAtPrev + 500`)
	if day := eval[string](t, ctx, `camdRec.day`); day != yesterday {
		t.Errorf("the playhead moving on took the timeline from %s to %s", yesterday, day)
	}
	eval[bool](t, ctx, `document.getElementById("tlNextDay").click(), true`)
	waitPage(t, ctx, "today again", `camdRec.day === "`+time.Now().Format("2006-01-02")+`" && camdRec.spans > 0 && document.querySelector("#recBar .span")`)
	fits(t, ctx, "timeline")
}

// recordedUntil waits until the recording reaches at and returns its
// last stretch.
func recordedUntil(t *testing.T, d *Daemon, token string, at time.Time) recordings.Span {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		tl := waitRecorded(t, d, token, 1)
		if s := tl.Spans[len(tl.Spans)-1]; !s.End.Before(at) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("the recording does not reach %v: %+v", at, tl.Spans)
		}
	}
}

// waitFile waits until a download is whole: size bytes at path.
func waitFile(t *testing.T, path string, size int64) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if fi, err := os.Stat(path); err == nil && fi.Size() == size {
			return
		}
		if time.Now().After(deadline) {
			entries, _ := os.ReadDir(filepath.Dir(path))
			t.Fatalf("no %d bytes in %s: %v", size, path, entries)
		}
	}
}

// TestAppLiveControls: live view goes fullscreen, shows its connection's
// quality from getStats, unmutes, takes a snapshot that is saved on the
// camera and offered as a download, and changes a picture setting.
func TestAppLiveControls(t *testing.T) {
	d := running(t, syntheticSource)
	token := owner(t, d)
	ctx := appPage(t, d, token, "#live")
	waitPage(t, ctx, "live video", `camd.framesDecoded > 0`)

	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById("fullscreen").click(), true`, gesture)); err != nil {
		t.Fatal(err)
	}
	waitPage(t, ctx, "fullscreen", `document.fullscreenElement && document.fullscreenElement.id === "liveBox"`)
	eval[bool](t, ctx, `document.exitFullscreen().then(() => true)`)

	waitPage(t, ctx, "the connection's quality", `camd.bitrate > 0 && camd.fps > 0 && camd.rttMs !== null`)
	type quality struct{ Bitrate, FPS, LossPct, RTTMs float64 }
	q := eval[quality](t, ctx, `({bitrate: camd.bitrate, fps: camd.fps, lossPct: camd.lossPct, rttMs: camd.rttMs})`)
	shown := eval[string](t, ctx, `document.getElementById("quality").textContent`)
	if !strings.Contains(shown, "Mbit/s") || !strings.Contains(shown, "fps") || !strings.Contains(shown, "lost") || !strings.HasSuffix(shown, " ms") {
		t.Errorf("the quality shown: %q", shown)
	}
	t.Logf("quality: %.0f bit/s, %.1f fps, %.1f %% lost, round trip %.1f ms: %q", q.Bitrate, q.FPS, q.LossPct, q.RTTMs, shown)

	eval[bool](t, ctx, `document.getElementById("sound").click(), true`)
	if eval[bool](t, ctx, `document.getElementById("video").muted`) {
		t.Error("unmute left the video muted")
	}

	// A snapshot: on the camera, and offered as a JPEG download.
	eval[bool](t, ctx, `document.getElementById("liveSnap").click(), true`)
	waitPage(t, ctx, "the snapshot", `camdLive.snap && !document.getElementById("liveSnapSave").hidden`)
	id := eval[string](t, ctx, `camdLive.snap.id`)
	var saved []snapshots.Snapshot
	if code, b := call(t, d, "GET", "/api/v1/snapshots", token, nil); code != http.StatusOK || json.Unmarshal(b, &saved) != nil {
		t.Fatalf("snapshots: %d %s", code, b)
	}
	found := false
	for _, s := range saved {
		found = found || s.ID == id && s.Cause == "manual"
	}
	if !found {
		t.Errorf("snapshot %s is not on the camera: %+v", id, saved)
	}
	if dl := eval[string](t, ctx, `document.getElementById("liveSnapSave").download`); !strings.HasSuffix(dl, ".jpg") {
		t.Errorf("the snapshot downloads as %q", dl)
	}
	if w := eval[int](t, ctx, `document.getElementById("liveSnapShown").width`); w != 160 {
		t.Errorf("the snapshot shown is %d px wide, want the picture's 160", w)
	}

	// The picture settings, at hand on the live screen.
	waitPage(t, ctx, "the picture settings", `!document.getElementById("picture").hidden && camdLive.picture`)
	eval[bool](t, ctx, `(() => { const s = document.getElementById("pic-night_mode"); s.value = "night"; s.dispatchEvent(new Event("change")); return true })()`)
	waitPage(t, ctx, "saved", `camdLive.pictureSaved === 1`)
	if s := settingsNow(t, d, token); s.NightMode != "night" {
		t.Errorf("night mode %q after the change on the live screen", s.NightMode)
	}
	fits(t, ctx, "live")
}

// TestAppEventsDayAndCalls: the events list shows the calls' history (a
// ring and the missed call, marked), filters by day, and an event's clip
// plays at its time on the timeline, where the missed call is marked.
func TestAppEventsDayAndCalls(t *testing.T) {
	d := running(t, syntheticSource, func(c *Config) { c.Calls.RingTimeout = 5 * time.Second })
	token := owner(t, d)
	waitRecorded(t, d, token, 2)
	ctx := appPage(t, d, token, "#events")
	waitPage(t, ctx, "the event stream", `camdShell.events === "open"`)
	eval[bool](t, ctx, `(() => { const s = document.getElementById("evType"); s.value = "doorbell.pressed,call.*"; s.dispatchEvent(new Event("change")); return true })()`)

	ring(t, d, token)
	waitPage(t, ctx, "the missed call", `document.querySelector('#evList li[data-type="call.missed"].call.missed') && document.querySelector('#evList li[data-type="call.ringing"].call.rung')`)
	if types := eval[[]string](t, ctx, `camdEvents.types`); len(types) != 2 {
		t.Errorf("calls and rings: %q, want the ring and the missed call", types)
	}

	// Another day: none; today: the calls again.
	setDay := func(day string) {
		eval[bool](t, ctx, `(() => { const s = document.getElementById("evDay"); s.value = "`+day+`"; s.dispatchEvent(new Event("change")); return true })()`)
	}
	setDay(time.Now().AddDate(0, 0, -1).Format("2006-01-02"))
	waitPage(t, ctx, "yesterday's list", `camdEvents.shown === 0 && document.getElementById("evStatus").textContent.includes("on this day")`)
	setDay(time.Now().Format("2006-01-02"))
	waitPage(t, ctx, "today's list", `camdEvents.shown === 2`)

	// The missed call's clip plays at its time on the timeline, which
	// marks the missed call.
	var missed []struct {
		Clip struct{ From time.Time }
	}
	if code, b := call(t, d, "GET", "/api/v1/events?type=call.missed", token, nil); code != http.StatusOK || json.Unmarshal(b, &missed) != nil || len(missed) != 1 || missed[0].Clip.From.IsZero() {
		t.Fatalf("the missed call: %d %s", code, b)
	}
	eval[bool](t, ctx, `document.querySelector('#evList li[data-type="call.missed"] button').click(), true`)
	waitPage(t, ctx, "the clip playing", `camdShell.screen === "timeline" && Math.abs(camdRec.tapped - `+jsTime(missed[0].Clip.From)+`) < 2 && camdRec.playedS > 0.3`)
	waitPage(t, ctx, "the missed call on the timeline", `document.querySelector("#recBar .marker.missed")`)
	fits(t, ctx, "events")
}

// TestAppTimelineAnHourBack: a recording of an hour ago (the first
// seconds recorded, stored again an hour earlier) shows on today's bar
// zoomed to 6 h, a tap near it plays it, and zoomed to 10 min around it
// a tap plays from the point tapped; the same seconds stored across last
// midnight play from yesterday's bar onto today's, the playhead on it.
func TestAppTimelineAnHourBack(t *testing.T) {
	if time.Now().Add(-time.Hour-time.Minute).Day() != time.Now().Day() {
		t.Skip("an hour ago was yesterday")
	}
	d := running(t, syntheticSource)
	token := owner(t, d)
	first := waitRecorded(t, d, token, 7).Spans[0]
	c, err := d.recording.store.Clip(stream, first.Start, first.Start.Add(6*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range c.Parts() {
		data, err := c.Read(i, nil)
		if err == nil {
			err = d.recording.store.Append(recordings.Fragment{Stream: stream, Start: p.Start.Add(-time.Hour), Duration: p.Duration,
				Key: p.Key, Audio: p.Audio, Init: p.Init, Data: data})
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	// The same seconds again across last midnight, 3 s before to 3 s
	// after.
	now := time.Now()
	midnight := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.Local)
	shift := midnight.Add(-3 * time.Second).Sub(c.Parts()[0].Start)
	for i, p := range c.Parts() {
		data, err := c.Read(i, nil)
		if err == nil {
			err = d.recording.store.Append(recordings.Fragment{Stream: stream, Start: p.Start.Add(shift), Duration: p.Duration,
				Key: p.Key, Audio: p.Audio, Init: p.Init, Data: data})
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
	back := c.Parts()[0].Start.Add(-time.Hour)
	backEnd := c.Parts()[len(c.Parts())-1].End().Add(-time.Hour)

	ctx := appPage(t, d, token, "#timeline")
	waitPage(t, ctx, "the recording an hour back", `camdRec.spans >= 2`)
	zoom := func(minutes string) {
		eval[bool](t, ctx, `(() => { const z = document.getElementById("tlZoom"); z.value = "`+minutes+`"; z.dispatchEvent(new Event("change")); return true })()`)
	}
	// 6 h on a phone's bar: about a minute a pixel. A tap half a minute
	// before the stretch lands in it or in the gap before it, which plays
	// from the stretch's start.
	zoom("360")
	tapAt(t, ctx, back.Add(-30*time.Second))
	waitPage(t, ctx, "playing an hour back", `camdRec.playedS > 0.5 && camdRec.windowStart >= `+jsTime(back)+` && camdRec.windowStart < `+jsTime(backEnd))

	// Zoomed to 10 min around the playhead: a tap 3 s into the stretch
	// plays from there.
	zoom("10")
	want := back.Add(3 * time.Second)
	tapped := tapAt(t, ctx, want)
	if tapped.Sub(want).Abs() > 2*time.Second {
		t.Fatalf("a tap at %v plays from %v", want, tapped)
	}
	waitPage(t, ctx, "playing from the tap", `camdRec.tapped === `+jsTime(tapped)+` && camdRec.playedS > 0.5`)
	st := eval[recState](t, ctx, `camdRec`)
	if ws := fromJS(st.WindowStart); ws.After(tapped) || tapped.Sub(ws) > 3*time.Second {
		t.Errorf("the window played starts at %v for a tap at %v", ws, tapped)
	}
	if head := fromJS(st.Playhead); head.Before(tapped) || head.After(backEnd) {
		t.Errorf("the playhead is at %v, for a tap at %v in the stretch %v to %v", head, tapped, back, backEnd)
	}

	// Played from 3 s before midnight: yesterday's bar, then past 24:00
	// today's, with the playhead on it.
	yesterday := midnight.Add(-time.Hour).Format("2006-01-02")
	eval[bool](t, ctx, `camdRecPlay(`+strconv.Quote(midnight.Add(-3*time.Second).Format(time.RFC3339))+`), true`)
	waitPage(t, ctx, "yesterday's bar", `camdRec.day === "`+yesterday+`" && camdRec.playedS > 0.2 && camdRec.playhead < `+jsTime(midnight))
	waitPage(t, ctx, "past midnight, today's bar", `camdRec.day === "`+midnight.Format("2006-01-02")+`" && camdRec.playhead >= `+jsTime(midnight)+
		` && camdRec.view.from <= camdRec.playhead && !document.getElementById("playhead").hidden`)
}
