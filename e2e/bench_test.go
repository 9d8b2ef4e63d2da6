package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/camd-project/camd/internal/testenv"
	"github.com/camd-project/camd/media/whep"
)

// benchSource starts camd on the synthetic camera or on a 720p 2 Mbps
// passthrough file with a keyframe every 2 s ("passthrough", and
// "passthrough-1G" with the cached group of pictures replayed at 1 Gbps).
func benchSource(b *testing.B, name string) *daemon {
	b.Helper()
	switch name {
	case "synthetic":
		return startDaemon(b)
	case "passthrough", "passthrough-1G":
		need(b, "ffmpeg")
		file := fixture(b, benchDir(b), "1280x720", 30, 20, 60, "2M", "high")
		// passthrough-1G replays the cached group of pictures at 1 Gbps
		// (live.replay_bitrate): as fast as camd writes it on loopback.
		replay := 20_000_000
		if name == "passthrough-1G" {
			replay = 1_000_000_000
		}
		return startDaemon(b, "--config", writeConfig(b, "source: passthrough\npassthrough: {file: "+file+"}\n"+
			fmt.Sprintf("live: {max_viewers: 200, max_viewers_per_user: 200, replay_bitrate: %d}\n", replay)+
			// All the viewers come from 127.0.0.1, at once.
			"http: {max_connections_per_address: 256}\n"))
	case "passthrough-idr":
		// An encoder that camd asks for a keyframe as a viewer joins
		// (internal/cmd/idrenc: 720p30, 2 Mbps, an IDR every 2 s by itself).
		return startDaemon(b, "--config", writeConfig(b, idrencConfig(b, "-width", "1280", "-height", "720", "-gop", "2s")+
			"live: {max_viewers: 200, max_viewers_per_user: 200}\nhttp: {max_connections_per_address: 256}\n"))
	}
	b.Fatalf("unknown source %q", name)
	return nil
}

var benchDirOnce = sync.OnceValues(func() (string, error) { return os.MkdirTemp("", "camd-bench-") })

// benchDir keeps fixtures across sub-benchmarks.
func benchDir(b testing.TB) string {
	d, err := benchDirOnce()
	if err != nil {
		b.Fatal(err)
	}
	return d
}

func percentile(samples []float64, p float64) float64 {
	s := slices.Clone(samples)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// BenchmarkTimeToFirstFrame measures, from the WHEP POST, the time until
// the first frame is decoded in headless Chromium (the page's
// requestVideoFrameCallback) and until camctl's client holds a complete
// keyframe. Run it with -benchtime=20x for 20 samples.
func BenchmarkTimeToFirstFrame(b *testing.B) {
	for _, src := range []string{"synthetic", "passthrough"} {
		b.Run("chromium/"+src, func(b *testing.B) {
			need(b, "chromium")
			d := benchSource(b, src)
			ctx := browser(b)
			watch(b, ctx, d.inviteLink(b), false) // pairs the browser
			var samples []float64
			for range b.N {
				st := watch(b, ctx, "https://"+d.addr+"/", false)
				samples = append(samples, st.TTFFMs)
			}
			b.ReportMetric(percentile(samples, 0.5), "ms-p50")
			b.ReportMetric(percentile(samples, 0.9), "ms-p90")
			b.ReportMetric(0, "ns/op")
		})
		b.Run("camctl/"+src, func(b *testing.B) {
			d := benchSource(b, src)
			var samples []float64
			for range b.N {
				ctx, cancel := context.WithTimeout(context.Background(), 600*time.Millisecond)
				st, err := whep.View(ctx, "https://"+d.addr+"/api/v1/whep", whep.ViewOptions{HTTPClient: insecureClient(), Header: d.viewHeader(b)})
				cancel()
				if err != nil {
					b.Fatal(err)
				}
				samples = append(samples, float64(st.FirstFrame.Microseconds())/1000)
			}
			b.ReportMetric(percentile(samples, 0.5), "ms-p50")
			b.ReportMetric(percentile(samples, 0.9), "ms-p90")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// procStat reads a process's resident set (bytes) and CPU time used.
func procStat(b *testing.B, pid int) (rss int64, cpu time.Duration) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			rss = kb << 10
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return rss, time.Duration(ut+st) * time.Second / 100 // USER_HZ
}

type camdStats struct {
	Published    uint64  `json:"frames_published"`
	LatencyP50Ms float64 `json:"latency_p50_ms"`
	LatencyP99Ms float64 `json:"latency_p99_ms"`
	Goroutines   int     `json:"goroutines"`
	Viewers      []struct {
		Frames  uint64 `json:"frames"`
		Packets uint64 `json:"packets"`
		Dropped uint64 `json:"dropped"`
		NACKs   uint64 `json:"nacks"`
		Resent  uint64 `json:"resent"`
	} `json:"viewers"`
}

// packets counts the RTP packets sent to the viewers.
func (s camdStats) packets() (n uint64) {
	for _, v := range s.Viewers {
		n += v.Packets
	}
	return n
}

// mallocs reads camd's count of heap allocations (GET /metrics).
// goMetrics reads the Go runtime's figures of camd's GET /metrics:
// mallocs, heap and stack bytes in use.
type goMetrics struct{ mallocs, heap, stack float64 }

func readGoMetrics(b *testing.B, d *daemon) goMetrics {
	req, _ := http.NewRequest("GET", "https://"+d.addr+"/metrics", nil)
	req.Header = d.viewHeader(b)
	resp, err := insecureClient().Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var m goMetrics
	found := 0
	for _, line := range strings.Split(string(body), "\n") {
		for name, v := range map[string]*float64{"go_memstats_mallocs_total": &m.mallocs, "go_memstats_heap_inuse_bytes": &m.heap, "go_memstats_stack_inuse_bytes": &m.stack} {
			if x, ok := strings.CutPrefix(line, name+" "); ok {
				f, err := strconv.ParseFloat(x, 64)
				if err != nil {
					b.Fatal(err)
				}
				*v = f
				found++
			}
		}
	}
	if found != 3 {
		b.Fatalf("GET /metrics (%s) lacks the go_memstats mallocs, heap or stack figures", resp.Status)
	}
	return m
}

func stats(b *testing.B, d *daemon) camdStats {
	req, _ := http.NewRequest("GET", "https://"+d.addr+"/api/v1/stats", nil)
	req.Header = d.viewHeader(b)
	resp, err := insecureClient().Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var s camdStats
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkFanOut runs N viewers (pion receivers in this process, camd in
// its own) of a 720p 2 Mbps passthrough stream for 10 s and reports camd's
// CPU and memory, what each viewer got, and camd's internal latency. It
// fails if any viewer lost a frame or camd dropped one.
func BenchmarkFanOut(b *testing.B) {
	for _, n := range []int{1, 10, 50, 100} {
		b.Run(fmt.Sprintf("viewers=%d", n), func(b *testing.B) {
			for range b.N {
				fanOut(b, n, 10*time.Second)
			}
		})
	}
}

func fanOut(b *testing.B, n int, watch time.Duration) {
	d := benchSource(b, "passthrough")
	pid := d.cmd.Process.Pid
	time.Sleep(time.Second)
	rss0, _ := procStat(b, pid)
	g0, m0 := stats(b, d).Goroutines, readGoMetrics(b, d)

	hdr := d.viewHeader(b)
	ctx, cancel := context.WithTimeout(context.Background(), watch)
	defer cancel()
	results := make([]whep.ViewStats, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		conn := viewerSocket(b)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer conn.Close()
			results[i], errs[i] = whep.View(ctx, "https://"+d.addr+"/api/v1/whep", whep.ViewOptions{HTTPClient: insecureClient(), Header: hdr, Conn: conn})
		}()
	}
	// Measure once everyone is connected and settled.
	time.Sleep(watch / 3)
	_, cpu0 := procStat(b, pid)
	mallocs0, packets0 := readGoMetrics(b, d).mallocs, stats(b, d).packets()
	t0 := time.Now()
	time.Sleep(watch / 2)
	rss1, cpu1 := procStat(b, pid)
	cpuShare := float64(cpu1-cpu0) / float64(time.Since(t0))
	m1, st := readGoMetrics(b, d), stats(b, d)
	profile(b, d)
	wg.Wait()

	var frames, firsts []float64
	var lost, dropped, nacks, resent uint64
	for i, r := range results {
		if errs[i] != nil {
			b.Errorf("viewer %d: %v", i, errs[i])
		}
		frames = append(frames, float64(r.FramesReceived))
		firsts = append(firsts, float64(r.FirstFrame.Milliseconds()))
		lost += r.FramesLost
	}
	for _, v := range st.Viewers {
		dropped += v.Dropped
		nacks += v.NACKs
		resent += v.Resent
	}
	// Speed is never bought with loss: every frame reaches every viewer.
	if lost > 0 || dropped > 0 {
		var losers []string
		for i, r := range results {
			if r.FramesLost > 0 {
				losers = append(losers, fmt.Sprintf("%d: %d of %d", i, r.FramesLost, r.FramesReceived+r.FramesLost))
			}
		}
		b.Errorf("%d frames lost by the viewers (%s), %d dropped by camd's hub; camd had %d NACKs and resent %d packets",
			lost, strings.Join(losers, ", "), dropped, nacks, resent)
	}
	b.ReportMetric((m1.mallocs-mallocs0)/float64(st.packets()-packets0), "allocs/packet")
	b.ReportMetric(float64(rss1)/(1<<20), "rss-MB")
	b.ReportMetric(float64(rss1-rss0)/float64(n)/1024, "KB/viewer")
	b.ReportMetric((m1.heap-m0.heap)/float64(n)/1024, "heap-KB/viewer")
	b.ReportMetric((m1.stack-m0.stack)/float64(n)/1024, "stack-KB/viewer")
	b.ReportMetric(cpuShare*100, "cpu-%")
	b.ReportMetric(percentile(firsts, 0.5), "first-frame-ms-p50")
	b.ReportMetric(percentile(firsts, 1), "first-frame-ms-max")
	b.ReportMetric(percentile(frames, 0), "frames-min")
	b.ReportMetric(percentile(frames, 0.5), "frames-p50")
	b.ReportMetric(float64(lost), "frames-lost")
	b.ReportMetric(float64(dropped), "hub-drops")
	b.ReportMetric(float64(nacks), "nacks")
	b.ReportMetric(float64(resent), "resent")
	b.ReportMetric(float64(st.Goroutines-g0)/float64(n), "goroutines/viewer")
	b.ReportMetric(st.LatencyP50Ms, "lat-ms-p50")
	b.ReportMetric(st.LatencyP99Ms, "lat-ms-p99")
	b.ReportMetric(0, "ns/op")
	d.stop()
}

var _ = chromedp.Navigate

// profile has camd write its heap and goroutine profiles while the
// viewers watch, when the benchmark runs with CAMD_PROFILE=PREFIX (camd
// inherits it; cmd/camd's profileOnSignal).
func profile(b *testing.B, d *daemon) {
	prefix := os.Getenv("CAMD_PROFILE")
	if prefix == "" {
		return
	}
	os.Remove(prefix + ".goroutine")
	if err := d.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		b.Fatal(err)
	}
	testenv.Eventually(b, "camd's profiles", func() bool {
		_, err := os.Stat(prefix + ".goroutine")
		return err == nil
	})
	b.Logf("profiles: %s.heap, %s.goroutine", prefix, prefix)
}

// viewerSocket is one viewer's UDP socket. All viewers of the benchmark
// share this process's two cores, so a burst can find a viewer not yet
// scheduled; a 4 MB receive buffer (SO_RCVBUFFORCE, as root) stands in for
// the phone that each real viewer would be. Losses that remain are camd's.
func viewerSocket(b testing.TB) net.PacketConn {
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	if rc, err := conn.(*net.UDPConn).SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) {
			if syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, 4<<20) != nil {
				conn.(*net.UDPConn).SetReadBuffer(4 << 20)
			}
		})
	}
	return conn
}
