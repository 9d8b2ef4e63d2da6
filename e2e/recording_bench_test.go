package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// writeBytes reads a process's write_bytes from /proc/PID/io: what it
// made the kernel write to storage.
func writeBytes(tb testing.TB, pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		tb.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "write_bytes: "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	tb.Fatal("no write_bytes in /proc/PID/io")
	return 0
}

type recStatus struct {
	Written  int64 `json:"bytes_written"`
	Recorder struct {
		Fragments uint64 `json:"fragments"`
	} `json:"recorder"`
}

// setMode changes the recording_mode setting through camctl.
func setMode(tb testing.TB, d *daemon, mode string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := camctl(tb, ctx, "settings", "set", "--store", d.store, "recording_mode="+mode); err != nil {
		tb.Fatal(err)
	}
}

var fsyncLine = regexp.MustCompile(`(?m)^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(fsync|fdatasync)\s*$`)

// fsyncs counts a process's fsync and fdatasync calls for d with strace
// (0, false without strace).
func fsyncs(tb testing.TB, pid int, d time.Duration) (int, bool) {
	if _, err := exec.LookPath("strace"); err != nil {
		return 0, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cmd := exec.CommandContext(ctx, "strace", "-f", "-c", "-e", "trace=fsync,fdatasync", "-p", strconv.Itoa(pid))
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	out, _ := cmd.CombinedOutput()
	n := 0
	for _, m := range fsyncLine.FindAllStringSubmatch(string(out), -1) {
		c, _ := strconv.Atoi(m[1])
		n += c
	}
	return n, true
}

// BenchmarkRecording2Mbps records a 720p 2 Mbps passthrough stream (no
// encoder: what camd's CPU does is the recording's) and reports the bytes
// written to disk per byte recorded and fsyncs per second (one window,
// strace attached), the recording's CPU cost (a window recording against
// one not, without strace, whose ptrace stops would count) and what camd
// writes while recording is off.
func BenchmarkRecording2Mbps(b *testing.B) {
	d := benchSource(b, "passthrough")
	pid := d.cmd.Process.Pid
	recorded(b, d, 3, time.Time{})
	const window = 30 * time.Second

	var s0, s1 recStatus
	d.api(b, "/api/v1/recordings/status", &s0)
	w0 := writeBytes(b, pid)
	n, haveStrace := fsyncs(b, pid, window)
	if !haveStrace {
		time.Sleep(window)
	}
	w1 := writeBytes(b, pid)
	d.api(b, "/api/v1/recordings/status", &s1)
	media := s1.Written - s0.Written
	if media <= 0 {
		b.Fatal("nothing recorded")
	}
	b.ReportMetric(float64(w1-w0)/float64(media), "written/recorded")
	b.ReportMetric(float64(media)*8/window.Seconds()/1e6, "recorded_Mbps")
	if haveStrace {
		b.ReportMetric(float64(n)/window.Seconds(), "fsyncs/s")
	}

	cpuShare := func() float64 {
		_, c0 := procStat(b, pid)
		time.Sleep(window)
		_, c1 := procStat(b, pid)
		return (c1 - c0).Seconds() / window.Seconds()
	}
	time.Sleep(time.Second) // strace gone
	on := cpuShare()
	setMode(b, d, "off")
	time.Sleep(2 * time.Second)
	w2 := writeBytes(b, pid)
	off := cpuShare()
	w3 := writeBytes(b, pid)
	b.ReportMetric(on*100, "cpu_%_recording")
	b.ReportMetric(off*100, "cpu_%_not_recording")
	b.ReportMetric((on-off)*100, "recording_cpu_%")
	b.ReportMetric(float64(w3-w2)*float64(time.Hour)/float64(window)/1e6, "idle_MB/h")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkExportHTTPS downloads a minute of recording (from the page
// cache) over HTTPS, as camctl does.
func BenchmarkExportHTTPS(b *testing.B) {
	d := startDaemon(b)
	tl := recorded(b, d, 62, time.Time{})
	last := tl.Spans[len(tl.Spans)-1]
	q := url.Values{"from": {last.End.Add(-time.Minute).Format(time.RFC3339Nano)}, "to": {last.End.Format(time.RFC3339Nano)}}
	client := insecureClient()
	client.Timeout = 0
	setMode(b, d, "off") // measure the export alone
	b.ResetTimer()
	var total int64
	for range b.N {
		req, _ := http.NewRequest("GET", "https://"+d.addr+"/api/v1/recordings/export?"+q.Encode(), nil)
		req.Header.Set("Authorization", "Bearer "+d.token(b))
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			b.Fatalf("%s: %v", resp.Status, err)
		}
		total = n
	}
	b.SetBytes(total)
}

// BenchmarkTimelineHTTPS asks camd for a day's timeline over HTTPS.
func BenchmarkTimelineHTTPS(b *testing.B) {
	d := startDaemon(b)
	recorded(b, d, 2, time.Time{})
	b.ResetTimer()
	for range b.N {
		var tl timelineAnswer
		if code := d.api(b, "/api/v1/recordings?from=-24h&to=now", &tl); code != 200 {
			b.Fatal(code)
		}
	}
}
