package e2e

import (
	"bytes"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestRelativeExportReadsOneFile reads an export of a relative range
// (-7s to -3s: recorded whole, its last fragment closed) as ffmpeg and a
// resuming download do: camd redirects to the absolute range, so every
// read of the file gets the same bytes and the same ETag however much
// later it comes.
func TestRelativeExportReadsOneFile(t *testing.T) {
	need(t, "ffmpeg")
	d := startDaemon(t, "--config", recConfig(t, ""))
	recorded(t, d, 8, time.Time{})
	rel := "https://" + d.addr + "/api/v1/recordings/export?from=-7s&to=-3s"

	// ffmpeg follows the redirect and decodes the file without an error.
	// Debian 12's ffmpeg (5.1) goes back to the URL it was given for every
	// seek, redirect or not (later versions keep the redirect's target):
	// it reads the fragmented MP4 straight through here.
	msg, err := exec.Command("ffmpeg", "-v", "error", "-seekable", "0", "-headers", "Authorization: Bearer "+d.token(t)+"\r\n",
		"-i", rel, "-f", "null", "-").CombinedOutput()
	if err != nil || len(bytes.TrimSpace(msg)) > 0 {
		t.Fatalf("ffmpeg reading %s: %v\n%s", rel, err, msg)
	}

	get := func(url, rng string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Authorization", "Bearer "+d.token(t))
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		resp, err := insecureClient().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	// The first part, then (while camd records on) the rest from the URL
	// the redirect named, as a download manager resumes.
	head, first := get(rel, "bytes=0-999")
	abs := head.Request.URL.String()
	if head.StatusCode != http.StatusPartialContent || !strings.Contains(abs, "from=20") || len(first) != 1000 {
		t.Fatalf("first part: %s from %s, %d bytes", head.Status, abs, len(first))
	}
	recorded(t, d, 7, time.Now())
	tail, rest := get(abs, "bytes=1000-")
	whole, all := get(abs, "")
	if tail.StatusCode != http.StatusPartialContent || whole.StatusCode != http.StatusOK {
		t.Fatalf("later reads: %s, %s", tail.Status, whole.Status)
	}
	if e := head.Header.Get("ETag"); e == "" || tail.Header.Get("ETag") != e || whole.Header.Get("ETag") != e {
		t.Fatalf("ETags %q, %q, %q", e, tail.Header.Get("ETag"), whole.Header.Get("ETag"))
	}
	if !bytes.Equal(append(first, rest...), all) {
		t.Fatalf("resumed download (%d+%d bytes) differs from the whole file (%d bytes)", len(first), len(rest), len(all))
	}
}
