package device

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/camd-project/camd/media/h264/h264test"
	"github.com/camd-project/camd/media/whep"
	"github.com/camd-project/camd/storage/recordings"
)

// A recording plays over WebRTC through WHEP: the viewer gets the range's
// frames, from a keyframe, in real time, and the session ends by itself a
// moment after the recording does.
func TestPlaybackOverWebRTC(t *testing.T) {
	h264test.NeedFFmpeg(t)
	d, token := recordingDaemon(t)
	tl := waitRecorded(t, d, token, 4)
	from := tl.Spans[0].Start.Add(time.Second)
	to := from.Add(2 * time.Second)
	endpoint := "https://" + d.Addr().String() + "/api/v1/recordings/whep?from=" +
		from.Format(time.RFC3339Nano) + "&to=" + to.Format(time.RFC3339Nano)
	hdr := http.Header{"Authorization": {"Bearer " + token}}

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	start := time.Now()
	st, err := whep.View(ctx, endpoint, whep.ViewOptions{HTTPClient: testClient(), Header: hdr})
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	// 2 s at 30 fps, from the keyframe at or before from (one a second):
	// 60 to 90 frames.
	if st.FramesReceived < 55 || st.FramesReceived > 95 || st.KeyFrames < 2 || st.FramesLost != 0 {
		t.Fatalf("played %d frames (%d keyframes, %d lost), want 60 to 90 from a keyframe", st.FramesReceived, st.KeyFrames, st.FramesLost)
	}
	if st.Width != 320 || st.Height != 240 {
		t.Errorf("played %dx%d, want the recorded 320x240", st.Width, st.Height)
	}
	// Real time, not a burst; and the session ended on its own.
	if took < 2*time.Second || took > 10*time.Second {
		t.Errorf("playing 2 s of recording took %v", took)
	}
	if n := d.whep.Stats().Viewers; n != 0 {
		t.Errorf("%d sessions left after the playback ended", n)
	}
	if n := playing(d); n != 0 {
		t.Errorf("%d playbacks left", n)
	}
	t.Logf("played %d frames (%d keyframes), %d audio packets in %v", st.FramesReceived, st.KeyFrames, st.AudioPackets, took)

	// A viewer that leaves half way (DELETE) stops the playback at once.
	short, stop := context.WithTimeout(context.Background(), time.Second)
	defer stop()
	if _, err := whep.View(short, endpoint, whep.ViewOptions{HTTPClient: testClient(), Header: hdr}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Second); playing(d) != 0 || d.whep.Stats().Viewers != 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("a viewer left; %d playbacks and %d sessions remain", playing(d), d.whep.Stats().Viewers)
		}
	}

	// Bad ranges get the export's answers; a bad offer, WHEP's.
	for _, c := range []struct {
		query, body string
		code        int
	}{
		{"from=now&to=-1h", "v=0", http.StatusBadRequest},
		{"from=-100h&to=-99h", "v=0", http.StatusNotFound},
		{"from=-1m", "not sdp", http.StatusBadRequest},
	} {
		req, _ := http.NewRequest("POST", "https://"+d.Addr().String()+"/api/v1/recordings/whep?"+c.query, strings.NewReader(c.body))
		req.Header = hdr.Clone()
		req.Header.Set("Content-Type", whep.ContentTypeSDP)
		resp, err := testClient().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.code {
			t.Errorf("POST ?%s with %q: %s, want %d", c.query, c.body, resp.Status, c.code)
		}
	}
	// A refused offer stops its playback; the playback's goroutine ends
	// just after the answer.
	for deadline := time.Now().Add(5 * time.Second); playing(d) != 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d playbacks left 5 s after refused offers", playing(d))
		}
	}
}

// Each export and playback holds one of the store's reader slots (it may
// map a whole volume): beyond them both routes answer 429 with
// Retry-After, and serve again once a slot is free.
func TestExportsAndPlaybacksBeyondTheLimitAre429(t *testing.T) {
	h264test.NeedFFmpeg(t)
	d, token := recordingDaemon(t)
	tl := waitRecorded(t, d, token, 2)
	from, to := tl.Spans[0].Start, tl.Spans[0].Start.Add(time.Second)
	var held []*recordings.Clip
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for {
		c, err := d.recording.store.Clip(stream, from, to)
		if errors.Is(err, recordings.ErrBusy) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	query := "?from=" + from.Format(time.RFC3339Nano) + "&to=" + to.Format(time.RFC3339Nano)
	exportPath := "/api/v1/recordings/export" + query

	resp := get(t, d, exportPath, token, nil)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("export with %d exports open: %s, Retry-After %q: %s", len(held), resp.Status, resp.Header.Get("Retry-After"), body)
	}
	req, _ := http.NewRequest("POST", "https://"+d.Addr().String()+"/api/v1/recordings/whep"+query, strings.NewReader("v=0"))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", whep.ContentTypeSDP)
	resp, err := testClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("playback with %d exports open: %s, Retry-After %q", len(held), resp.Status, resp.Header.Get("Retry-After"))
	}

	held[0].Close()
	held = held[1:]
	resp = get(t, d, exportPath, token, nil)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(b) == 0 {
		t.Fatalf("export once a slot is free: %s, %d bytes", resp.Status, len(b))
	}
}

func playing(d *Daemon) int { return int(d.recording.playbacks.active.Load()) }
