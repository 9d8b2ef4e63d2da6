package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/camd-project/camd/internal/testenv"
	"github.com/camd-project/camd/media/whep"
)

// BenchmarkWHIPToSFU publishes camd's live stream (720p30 2 Mbps
// passthrough) with WHIP to MediaMTX v1.20.1 and has N pion WHEP viewers
// (in this process) pull it from MediaMTX for 16 s. It reports camd's
// CPU and RSS over the middle 10 s (camd alone, with the publish and no
// SFU viewer, with the publish and N), MediaMTX's CPU, and the frames
// each SFU viewer got: camd's cost must not grow with the SFU's viewers.
func BenchmarkWHIPToSFU(b *testing.B) {
	for _, n := range []int{0, 50} {
		b.Run(fmt.Sprintf("sfu-viewers=%d", n), func(b *testing.B) {
			for range b.N {
				whipToSFU(b, n, 16*time.Second)
			}
		})
	}
}

// busyOver returns the share of one core a process used over d, and its
// largest RSS.
func busyOver(b *testing.B, pid int, d time.Duration) (float64, int64) {
	_, cpu0 := procStat(b, pid)
	t0 := time.Now()
	var rssMax int64
	for time.Since(t0) < d {
		rss, _ := procStat(b, pid)
		rssMax = max(rssMax, rss)
		time.Sleep(250 * time.Millisecond)
	}
	_, cpu1 := procStat(b, pid)
	return float64(cpu1-cpu0) / float64(time.Since(t0)), rssMax
}

func whipToSFU(b *testing.B, n int, watch time.Duration) {
	tool := testenv.Interop(b, "mediamtx")
	d := benchSource(b, "passthrough")
	pid := d.cmd.Process.Pid
	time.Sleep(2 * time.Second)
	alone, rssAlone := busyOver(b, pid, 5*time.Second)

	rtspPort, whipPort := freePort(b), freePort(b)
	sfu := runMediaMTX(b, tool, b.TempDir(), whipMediaMTXConf(rtspPort, whipPort, freePort(b)))
	d.setSettings(b, fmt.Sprintf("whip_url=http://127.0.0.1:%d/porch/whip", whipPort), "whip_token=cam:s3cret-publish")
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		var st whipStatus
		d.api(b, "/api/v1/whip", &st)
		if st.State == "publishing" {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("camd does not publish: %+v", st)
		}
	}

	// MediaMTX serves the stream once it has every track it was offered.
	for deadline := time.Now().Add(time.Minute); !strings.Contains(sfu.logs.String(), "is publishing to path 'porch'"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatalf("MediaMTX never got the stream:\n%s", sfu.logs.String())
		}
	}
	results := make([]whep.ViewStats, n)
	errs := make([]error, n)
	vctx, vcancel := context.WithTimeout(context.Background(), watch)
	defer vcancel()
	var wg sync.WaitGroup
	for i := range n {
		conn := viewerSocket(b)
		wg.Go(func() {
			defer conn.Close()
			results[i], errs[i] = whep.View(vctx, fmt.Sprintf("http://127.0.0.1:%d/porch/whep", whipPort),
				whep.ViewOptions{HTTPClient: http.DefaultClient, Conn: conn})
		})
	}
	time.Sleep(4 * time.Second) // every viewer connected
	done := make(chan struct{})
	var sfuBusy float64
	go func() { defer close(done); sfuBusy, _ = busyOver(b, sfu.pid, 10*time.Second) }()
	busy, rss := busyOver(b, pid, 10*time.Second)
	<-done
	vcancel()
	wg.Wait()
	minFrames, lost := uint64(1<<62), uint64(0)
	for i, r := range results {
		if errs[i] != nil {
			b.Errorf("SFU viewer %d: %v", i, errs[i])
		}
		minFrames = min(minFrames, r.FramesReceived)
		lost += r.FramesLost
	}
	var st whipStatus
	d.api(b, "/api/v1/whip", &st)
	if st.State != "publishing" || st.Failures != 0 {
		b.Errorf("the publish: %+v", st)
	}
	b.ReportMetric(alone*100, "camd-cpu-%-alone")
	b.ReportMetric(busy*100, "camd-cpu-%")
	b.ReportMetric(float64(rssAlone)/(1<<20), "camd-rss-MB-alone")
	b.ReportMetric(float64(rss)/(1<<20), "camd-rss-MB")
	b.ReportMetric(sfuBusy*100, "mediamtx-cpu-%")
	if n > 0 {
		b.ReportMetric(float64(minFrames), "sfu-viewer-frames-min")
		b.ReportMetric(float64(lost), "sfu-viewer-frames-lost")
	}
	b.ReportMetric(float64(st.Frames), "frames-published")
	b.ReportMetric(0, "ns/op")
	sfu.stop()
	d.stop()
}
