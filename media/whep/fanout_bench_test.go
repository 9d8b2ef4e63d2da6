package whep

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/camd-project/camd/media"
)

// mutedConn is a viewer's UDP socket that, once muted, drops the SRTP and
// SRTCP it receives (ICE and DTLS still pass): the viewer costs nothing
// per packet, so that a benchmark measures the sender alone.
type mutedConn struct {
	*net.UDPConn
	muted *atomic.Bool
}

// ReadFrom drops SRTP and SRTCP (RFC 7983: first byte 128..191) once
// muted, without allocating for them.
func (c mutedConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.UDPConn.ReadFromUDPAddrPort(b)
		if err != nil || !c.muted.Load() || n == 0 || b[0] < 128 || b[0] > 191 {
			return n, net.UDPAddrFromAddrPort(addr), err
		}
	}
}

// BenchmarkSendFanOut measures camd's send path: one 720p-sized video
// frame (20 KB, 17 RTP packets) sent to N connected viewers through
// pion's interceptors (sender reports, TWCC header, congestion control
// for an encoding source), SRTP and the shared UDP socket. The viewers
// drop what they receive, so time and allocations are the sender's; per
// op is one frame to every viewer.
func BenchmarkSendFanOut(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		for _, encoding := range []bool{false, true} {
			name := fmt.Sprintf("passthrough/viewers=%d", n)
			if encoding {
				name = fmt.Sprintf("encoding/viewers=%d", n)
			}
			b.Run(name, func(b *testing.B) { sendFanOut(b, n, encoding) })
		}
	}
}

func sendFanOut(b *testing.B, n int, encoding bool) {
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	h := media.NewHub(media.HubOptions{})
	defer h.Close()
	srv, err := NewServer(h, Options{Conn: conn, IncludeLoopback: true, Certificate: testCertificate(b),
		MaxViewers: n + 1, QueueFrames: 4096})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /whep", srv.HandleOffer)
	mux.HandleFunc("DELETE /whep/{id}", srv.HandleDelete)
	hs := httptest.NewServer(mux)
	defer hs.Close()
	h.Begin(media.SourceInfo{Name: "bench", ForcesKeyframes: encoding})

	// Frames as a 2 Mbps 30 fps stream has them, a keyframe first.
	data := make([]byte, 20000)
	for i := range data {
		data[i] = byte(i) | 1
	}
	au := func(key bool) []byte {
		hdr := []byte{0, 0, 0, 1, 0x41}
		if key {
			hdr = append(fakeAU(true, 0)[:28], 0, 0, 0, 1, 0x65)
		}
		return append(hdr, data...)
	}
	var pts time.Duration
	publish := func(key bool) {
		pts += 33 * time.Millisecond
		h.Publish(&media.Frame{Kind: media.Video, Key: key, PTS: pts, Captured: time.Now(), Data: au(key)})
	}

	ctx, cancel := context.WithCancel(context.Background())
	var muted atomic.Bool
	var wg sync.WaitGroup
	for range n {
		vc, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		wg.Go(func() {
			defer vc.Close()
			View(ctx, hs.URL+"/whep", ViewOptions{Conn: mutedConn{vc.(*net.UDPConn), &muted}})
		})
	}
	defer func() { cancel(); wg.Wait() }()
	// Every viewer connected and sent its first frame: a keyframe now and
	// then until they all have one.
	sent := func() (frames uint64, viewers int) {
		for _, s := range srv.Stats().Sessions {
			frames += s.Frames
			if s.Frames > 0 {
				viewers++
			}
		}
		return frames, viewers
	}
	for deadline := time.Now().Add(time.Minute); ; {
		publish(true)
		if _, v := sent(); v == n {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d viewers connected", func() int { _, v := sent(); return v }(), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	muted.Store(true)
	want, _ := sent()
	// Frames go out in batches that the viewers' queues hold; the wait
	// polls rarely, so that its own cost stays out of the figures.
	waitSent := func() {
		for {
			if f, _ := sent(); f >= want {
				return
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitSent()
	cpu0 := cpuTime()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		publish(false)
		want += uint64(n)
		if i%256 == 255 || i == b.N-1 {
			waitSent()
		}
	}
	b.StopTimer()
	packets := (&media.Frame{Kind: media.Video, Data: au(false)}).Packets()
	b.ReportMetric(float64(packets), "packets/frame")
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N*n)/1e3, "cpu-µs/viewer-frame")
}

// cpuTime is the CPU time this process used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
