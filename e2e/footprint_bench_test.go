package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/camd-project/camd/media/whep"
)

// BenchmarkFootprint is what camd costs a camera: resident memory and CPU
// with two viewers watching (a) a 720p30 2 Mbps passthrough stream (a
// hardware encoder's output: the budget is 24 MB RSS) and (b) the
// synthetic 720p30 software encode. Recording runs too when camd records
// by default (rec=1 in the result). Memory is sampled every 250 ms for
// 10 s once the viewers have settled.
func BenchmarkFootprint(b *testing.B) {
	for _, src := range []string{"passthrough", "passthrough-nocgo", "synthetic"} {
		b.Run(src+"/viewers=2", func(b *testing.B) {
			for range b.N {
				footprint(b, src, 2)
			}
		})
	}
}

func footprint(b *testing.B, src string, viewers int) {
	var d *daemon
	if src == "passthrough-nocgo" {
		d = nocgoPassthrough(b)
	} else {
		d = benchSource(b, src)
	}
	pid := d.cmd.Process.Pid
	hdr := d.viewHeader(b)
	settle, measure := 5*time.Second, 10*time.Second
	ctx, cancel := context.WithTimeout(context.Background(), settle+measure+2*time.Second)
	defer cancel()
	results := make([]whep.ViewStats, viewers)
	errs := make([]error, viewers)
	var wg sync.WaitGroup
	for i := range viewers {
		conn := viewerSocket(b)
		wg.Go(func() {
			defer conn.Close()
			results[i], errs[i] = whep.View(ctx, "https://"+d.addr+"/api/v1/whep", whep.ViewOptions{HTTPClient: insecureClient(), Header: hdr, Conn: conn})
		})
	}
	time.Sleep(settle)
	_, cpu0 := procStat(b, pid)
	t0 := time.Now()
	var rssSum, rssMax int64
	n := 0
	for time.Since(t0) < measure {
		rss, _ := procStat(b, pid)
		rssSum += rss
		rssMax = max(rssMax, rss)
		n++
		time.Sleep(250 * time.Millisecond)
	}
	_, cpu1 := procStat(b, pid)
	cpuShare := float64(cpu1-cpu0) / float64(time.Since(t0))
	hwm := procHWM(b, pid)
	anon, file := procSplit(b, pid)
	wg.Wait()
	for i, r := range results {
		if errs[i] != nil {
			b.Errorf("viewer %d: %v", i, errs[i])
		}
		if r.FramesReceived < 300 {
			b.Errorf("viewer %d got only %d frames", i, r.FramesReceived)
		}
	}
	recording := 0.0
	if strings.Contains(d.log(), "recordings: new volume") {
		recording = 1
	}
	b.ReportMetric(float64(rssSum)/float64(n)/(1<<20), "rss-MB")
	b.ReportMetric(float64(rssMax)/(1<<20), "rss-max-MB")
	b.ReportMetric(float64(hwm)/(1<<20), "rss-peak-MB")
	b.ReportMetric(float64(anon)/(1<<20), "anon-MB")
	b.ReportMetric(float64(file)/(1<<20), "file-MB")
	b.ReportMetric(cpuShare*100, "cpu-%")
	b.ReportMetric(recording, "rec")
	b.ReportMetric(0, "ns/op")
	d.stop()
}

// procHWM is a process's peak resident set (VmHWM), in bytes.
func procHWM(b *testing.B, pid int) int64 {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// procSplit is a process's resident memory split into anonymous and
// file-backed, in bytes (smaps_rollup).
func procSplit(b *testing.B, pid int) (anon, file int64) {
	rollup, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(rollup), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "Pss_Anon:":
			anon = kb << 10
		case "Pss_File:":
			file = kb << 10
		}
	}
	return anon, file
}

// nocgoPassthrough runs the build a passthrough-only camera ships: no
// cgo (no software codecs, no V4L2/ALSA capture), stripped, built by make
// cross exactly like its armv6 and mipsle builds, on the same 720p 2 Mbps
// stream.
func nocgoPassthrough(b *testing.B) *daemon {
	b.Helper()
	need(b, "ffmpeg")
	dir := filepath.Join(bin, "cross-native")
	exe := filepath.Join(dir, "native-nocgo", "camd")
	if _, err := os.Stat(exe); err != nil {
		if out, err := exec.Command("../scripts/cross.sh", "-o", dir, "native-nocgo").CombinedOutput(); err != nil {
			b.Fatalf("building camd without cgo: %v\n%s", err, out)
		}
	}
	file := fixture(b, benchDir(b), "1280x720", 30, 20, 60, "2M", "high")
	cfg := writeConfig(b, "source: passthrough\npassthrough: {file: "+file+"}\n")
	d := &daemon{t: b, data: b.TempDir()}
	d.start(b, exec.Command(exe, runArgs(d.data, "127.0.0.1:0", "--config", cfg)...), 30*time.Second)
	d.pair(b)
	return d
}
