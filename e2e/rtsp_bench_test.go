package e2e

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// BenchmarkRTSPTimeToFirstFrame is the time an RTSP client waits for its
// first picture: ffprobe started until it has decoded the first video
// frame and exits (digest authentication, DESCRIBE, SETUP, PLAY, the
// keyframe: an IDR forced by the synthetic camera's encoder, the cached
// group of pictures of a passthrough stream with a keyframe every 2 s),
// ffprobe's own start included. ffprobe by default first analyses the
// streams (up to 20 pictures to guess the frame rate): the probe=default
// runs are what a user of ffprobe sees; probe=none (-analyzeduration 0
// -probesize 32) leaves that out and is closer to camd's share. Run it
// with -benchtime=20x.
func BenchmarkRTSPTimeToFirstFrame(b *testing.B) {
	need(b, "ffprobe")
	for _, run := range []struct{ src, probe string }{
		{"synthetic", "default"}, {"synthetic", "none"}, {"passthrough", "default"}, {"passthrough", "none"},
	} {
		src := run.src
		b.Run(src+"/probe="+run.probe, func(b *testing.B) {
			var d *daemon
			if src == "synthetic" {
				d = startDaemon(b, "--config", writeConfig(b, "rtsp: {listen: 127.0.0.1:0, rtp_port: 0}\n"))
			} else {
				d = startDaemon(b, "--config", rtspConfig(b, "1280x720"))
			}
			id, secret, _ := d.streamKey(b, "ffprobe")
			url := d.rtspURL(b, id, secret)
			var samples []float64
			for range b.N {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				start := time.Now()
				args := []string{"-v", "error", "-rtsp_transport", "tcp"}
				if run.probe == "none" {
					args = append(args, "-analyzeduration", "0", "-probesize", "32")
				}
				args = append(args, "-select_streams", "v", "-read_intervals", "%+#1", "-show_entries", "frame=key_frame", "-of", "csv=p=0", url)
				out, err := exec.CommandContext(ctx, "ffprobe", args...).CombinedOutput()
				took := time.Since(start)
				cancel()
				if err != nil || !strings.HasPrefix(strings.TrimSpace(string(out)), "1") {
					b.Fatalf("ffprobe: %v %q", err, out)
				}
				samples = append(samples, float64(took.Microseconds())/1000)
			}
			// ffprobe alone, for scale: starting it and reading nothing.
			start := time.Now()
			exec.Command("ffprobe", "-v", "quiet", "-version").Run()
			b.ReportMetric(float64(time.Since(start).Microseconds())/1000, "ms-ffprobe-start")
			b.ReportMetric(percentile(samples, 0.5), "ms-p50")
			b.ReportMetric(percentile(samples, 0.9), "ms-p90")
			b.ReportMetric(0, "ns/op")
			d.stop()
		})
	}
}

// BenchmarkRTSPAndWebRTCViewers is camd's CPU and memory with 8 RTSP
// clients (4 TCP, 4 UDP) and 8 WebRTC viewers of a 720p30 2 Mbps
// passthrough stream, measured over the middle 10 s of 16 s of viewing,
// against camd alone before they came; and whether each got every frame.
func BenchmarkRTSPAndWebRTCViewers(b *testing.B) {
	for range b.N {
		d := startDaemon(b, "--config", rtspConfig(b, "1280x720"))
		pid := d.cmd.Process.Pid
		time.Sleep(2 * time.Second)
		rss0, cpuIdle0 := procStat(b, pid)
		t0 := time.Now()
		time.Sleep(5 * time.Second)
		_, cpuIdle1 := procStat(b, pid)
		idle := float64(cpuIdle1-cpuIdle0) / float64(time.Since(t0))

		type result struct {
			rw   []rtspWatch
			errs []error
			n    []uint64
			lost uint64
		}
		done := make(chan result, 1)
		go func() {
			rw, ws, errs := viewers(b, d, 8, 8, 16*time.Second)
			r := result{rw: rw, errs: errs}
			for _, s := range ws {
				r.n = append(r.n, s.FramesReceived)
				r.lost += s.FramesLost
			}
			done <- r
		}()
		time.Sleep(4 * time.Second)
		_, cpu0 := procStat(b, pid)
		t1 := time.Now()
		var rssMax int64
		for time.Since(t1) < 10*time.Second {
			rss, _ := procStat(b, pid)
			rssMax = max(rssMax, rss)
			time.Sleep(250 * time.Millisecond)
		}
		_, cpu1 := procStat(b, pid)
		busy := float64(cpu1-cpu0) / float64(time.Since(t1))
		r := <-done
		skipped, lost, minFrames := 0, 0, 1<<30
		for i, w := range r.rw {
			if w.err != nil {
				b.Errorf("rtsp client %d: %v", i, w.err)
			}
			skipped += w.skipped
			lost += w.lostPackets
			minFrames = min(minFrames, w.frames)
		}
		minWHEP := uint64(1 << 30)
		for i, n := range r.n {
			if r.errs[i] != nil {
				b.Errorf("webrtc viewer %d: %v", i, r.errs[i])
			}
			minWHEP = min(minWHEP, n)
		}
		b.ReportMetric(idle*100, "cpu-%-alone")
		b.ReportMetric(busy*100, "cpu-%")
		b.ReportMetric(float64(rss0)/(1<<20), "rss-MB-alone")
		b.ReportMetric(float64(rssMax)/(1<<20), "rss-MB")
		b.ReportMetric(float64(minFrames), "rtsp-frames-min")
		b.ReportMetric(float64(skipped), "rtsp-frames-skipped")
		b.ReportMetric(float64(lost), "rtsp-packets-lost")
		b.ReportMetric(float64(minWHEP), "webrtc-frames-min")
		b.ReportMetric(float64(r.lost), "webrtc-frames-lost")
		b.ReportMetric(0, "ns/op")
		d.stop()
	}
}
