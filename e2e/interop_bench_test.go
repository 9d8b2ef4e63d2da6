package e2e

import (
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/camd-project/camd/internal/testenv"
)

// BenchmarkInteropTimeToFirstFrame measures time to first frame through
// independent clients (run it with -benchtime=10x for 10 samples):
//
//   - go2rtc: go2rtc's WebRTC client (e2e/testdata/go2rtcwhep), from its
//     WHEP POST to the first complete keyframe it depacketized;
//   - mediamtx/cold: an RTSP reader of MediaMTX whose WHEP source pulls
//     camd on demand (a fresh MediaMTX each time): from starting ffmpeg
//     to its first decoded frame, MediaMTX's POST to camd included;
//   - mediamtx/warm: the same reader when MediaMTX already pulls camd
//     (MediaMTX keeps no group of pictures: the reader waits for camd's
//     next keyframe, every 2 s).
//
// The MediaMTX figures are ffmpeg's, from its start to its first decoded
// frame (the frames before a keyframe fail to decode: -max_error_rate 1
// lets ffmpeg exit cleanly after them).
func BenchmarkInteropTimeToFirstFrame(b *testing.B) {
	report := func(b *testing.B, samples []float64) {
		b.ReportMetric(percentile(samples, 0.5), "ms-p50")
		b.ReportMetric(percentile(samples, 0.9), "ms-p90")
		b.ReportMetric(0, "ns/op")
	}
	b.Run("go2rtc", func(b *testing.B) {
		tool := testenv.Interop(b, "go2rtc")
		d := benchSource(b, "synthetic")
		out := filepath.Join(b.TempDir(), "v.h264")
		var samples []float64
		for range b.N {
			r, err := go2rtcView(b, tool, d, d.fingerprint, out, 1)
			if err != nil {
				b.Fatal(err)
			}
			samples = append(samples, r.FirstFrameMs)
		}
		report(b, samples)
	})
	firstFrame := func(b *testing.B, url string) float64 {
		start := time.Now()
		out, err := exec.Command("ffmpeg", "-v", "error", "-rtsp_transport", "tcp", "-analyzeduration", "0",
			"-i", url, "-map", "0:v", "-frames:v", "1", "-max_error_rate", "1", "-f", "null", "-").CombinedOutput()
		if err != nil {
			b.Fatalf("ffmpeg %s: %v\n%s", url, err, out)
		}
		return float64(time.Since(start).Microseconds()) / 1000
	}
	for _, cold := range []bool{true, false} {
		name := "mediamtx/warm"
		if cold {
			name = "mediamtx/cold"
		}
		b.Run(name, func(b *testing.B) {
			need(b, "ffprobe")
			tool := testenv.Interop(b, "mediamtx")
			d := benchSource(b, "synthetic")
			url, stop := "", func() {}
			if !cold {
				url, _ = mediamtx(b, tool, d, false)
			}
			var samples []float64
			for range b.N {
				if cold {
					url, stop = mediamtx(b, tool, d, true)
				}
				samples = append(samples, firstFrame(b, url))
				stop() // its WHEP session counts against the user's viewers
			}
			report(b, samples)
		})
	}
}
