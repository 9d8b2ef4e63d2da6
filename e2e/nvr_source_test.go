package e2e

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/pion/rtp"

	"github.com/camd-project/camd/media/h264"
)

// loopCameras are n RTSP test cameras (rtsp://ADDR/cam0 … cam{n-1}) in
// one gortsplib server of the test's process, each playing the same
// H.264 file in a loop at its frame rate, as cameras of another make
// that an NVR adds by URL. The file is cut into access units and
// packetized once; each camera only stamps its own sequence numbers and
// timestamps, so the cameras cost little beside the NVR they feed. The
// server offers TCP only (the NVR's client switches to it after the
// refused UDP SETUP): on a loaded machine, loopback UDP drops packets
// that neither side lost.
//
// A camera starts sending at the first access unit of the file (an IDR)
// on its first tick after a PLAY, as a camera whose encoder starts (or
// one with a cache of its group of pictures); Restart cuts its reader
// off and starts it again the same way.
type loopCameras struct {
	srv   *gortsplib.Server
	addr  string
	units [][]rtpUnit // the file's access units, packetized
	tick  time.Duration
	cams  []*loopCamera
	stop  chan struct{}
	done  chan struct{}
}

// rtpUnit is one RTP packet's payload and marker bit.
type rtpUnit struct {
	payload []byte
	marker  bool
}

type loopCamera struct {
	desc *description.Session
	mu   sync.Mutex
	st   *gortsplib.ServerStream
	down bool
	// start > 0 counts the ticks before the camera starts at the file's
	// first access unit (set by PLAY).
	start   int
	playing bool
	next    int // index of the next access unit
	seq     uint16
	ts      uint32
	firstAt time.Time // the first packet after the newest PLAY
	frames  atomic.Uint64
	bytes   atomic.Uint64 // H.264 bytes sent
	paused  atomic.Bool
}

// startLoopCameras serves n cameras playing file (Annex-B H.264 at fps)
// on listener l, or on a free loopback port when l is nil.
func startLoopCameras(tb testing.TB, file string, fps, n int, l net.Listener) *loopCameras {
	tb.Helper()
	lc := &loopCameras{tick: time.Second / time.Duration(fps), stop: make(chan struct{}), done: make(chan struct{})}
	lc.units = packetize(tb, file)
	if l == nil {
		var err error
		if l, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			tb.Fatal(err)
		}
	}
	lc.addr = l.Addr().String()
	lc.srv = &gortsplib.Server{Handler: lc, RTSPAddress: lc.addr,
		Listen: func(string, string) (net.Listener, error) { return l, nil }}
	if err := lc.srv.Start(); err != nil {
		tb.Fatal(err)
	}
	for range n {
		c := &loopCamera{desc: &description.Session{Medias: []*description.Media{{
			Type:    description.MediaTypeVideo,
			Formats: []format.Format{&format.H264{PayloadTyp: 96, PacketizationMode: 1}},
		}}}}
		c.st = &gortsplib.ServerStream{Server: lc.srv, Desc: c.desc}
		if err := c.st.Initialize(); err != nil {
			tb.Fatal(err)
		}
		lc.cams = append(lc.cams, c)
	}
	go lc.run()
	tb.Cleanup(lc.close)
	return lc
}

func (lc *loopCameras) close() {
	select {
	case <-lc.stop:
		return
	default:
	}
	close(lc.stop)
	<-lc.done
	for _, c := range lc.cams {
		c.mu.Lock()
		c.st.Close()
		c.mu.Unlock()
	}
	lc.srv.Close()
}

// url is camera i's RTSP URL.
func (lc *loopCameras) url(i int) string {
	return "rtsp://" + lc.addr + "/cam" + strconv.Itoa(i)
}

// packetize cuts file into access units and each into RTP payloads
// (FU-A for the large NAL units), once for every camera.
func packetize(tb testing.TB, file string) [][]rtpUnit {
	tb.Helper()
	f, err := os.Open(file)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	enc, err := (&format.H264{PayloadTyp: 96, PacketizationMode: 1}).CreateEncoder()
	if err != nil {
		tb.Fatal(err)
	}
	sp := h264.NewSplitter(f)
	var out [][]rtpUnit
	for {
		au, err := sp.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			tb.Fatal(err)
		}
		pkts, err := enc.Encode(h264.NALUs(au.Data))
		if err != nil {
			tb.Fatal(err)
		}
		var u []rtpUnit
		for _, p := range pkts {
			u = append(u, rtpUnit{payload: bytes.Clone(p.Payload), marker: p.Marker})
		}
		out = append(out, u)
	}
	if len(out) == 0 {
		tb.Fatalf("no access unit in %s", file)
	}
	return out
}

// run sends each playing camera's next access unit every tick. A tick
// the machine's load delayed is made up at once: the cameras keep their
// frame rate on the wall clock, as real ones would, rather than slow
// down with the NVR they feed.
func (lc *loopCameras) run() {
	defer close(lc.done)
	t := time.NewTicker(lc.tick)
	defer t.Stop()
	start, ticks := time.Now(), 0
	for {
		select {
		case <-lc.stop:
			return
		case <-t.C:
		}
		for due := int(time.Since(start) / lc.tick); ticks < due; ticks++ {
			for _, c := range lc.cams {
				lc.send(c)
			}
		}
	}
}

// send sends camera c's next access unit, if it is playing.
func (lc *loopCameras) send(c *loopCamera) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.start > 0 {
		if c.start--; c.start == 0 {
			c.playing, c.next, c.firstAt = true, 0, time.Now()
		}
	}
	if !c.playing || c.down || c.paused.Load() {
		return
	}
	medi, n := c.desc.Medias[0], 0
	for _, u := range lc.units[c.next] {
		c.st.WritePacketRTP(medi, &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96,
			SequenceNumber: c.seq, Timestamp: c.ts, SSRC: 0xca3d0000, Marker: u.marker}, Payload: u.payload})
		c.seq++
		n += len(u.payload)
	}
	c.ts += uint32(90000 * lc.tick / time.Second)
	c.next = (c.next + 1) % len(lc.units)
	c.frames.Add(1)
	c.bytes.Add(uint64(n))
}

// camera is the camera a request's path names (/camN), or nil.
func (lc *loopCameras) camera(path string) *loopCamera {
	i, err := strconv.Atoi(strings.TrimPrefix(strings.Trim(path, "/"), "cam"))
	if err != nil || i < 0 || i >= len(lc.cams) {
		return nil
	}
	return lc.cams[i]
}

func (lc *loopCameras) stream(path string) (*base.Response, *gortsplib.ServerStream, error) {
	c := lc.camera(path)
	if c == nil {
		return &base.Response{StatusCode: base.StatusNotFound}, nil, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.down {
		return &base.Response{StatusCode: base.StatusNotFound}, nil, nil
	}
	return &base.Response{StatusCode: base.StatusOK}, c.st, nil
}

func (lc *loopCameras) OnDescribe(ctx *gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	return lc.stream(ctx.Path)
}

func (lc *loopCameras) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	return lc.stream(ctx.Path)
}

func (lc *loopCameras) OnPlay(ctx *gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	if c := lc.camera(ctx.Path); c != nil {
		c.mu.Lock()
		// The session becomes a reader of the stream once this returns:
		// start on the tick after next, not on one that could come first.
		c.playing, c.start = false, 2
		c.mu.Unlock()
	}
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// Down stops camera i: its reader is cut off and it answers nothing
// until Up.
func (lc *loopCameras) Down(i int) {
	c := lc.cams[i]
	c.mu.Lock()
	defer c.mu.Unlock()
	c.down, c.playing, c.start = true, false, 0
	c.st.Close()
	c.st = &gortsplib.ServerStream{Server: lc.srv, Desc: c.desc}
	c.st.Initialize()
}

// Up starts camera i again; it sends from the file's start to the next
// reader.
func (lc *loopCameras) Up(i int) {
	c := lc.cams[i]
	c.mu.Lock()
	c.down = false
	c.mu.Unlock()
}

// FirstPacket is when camera i sent its first packet after its newest
// PLAY (zero before).
func (lc *loopCameras) FirstPacket(i int) time.Time {
	c := lc.cams[i]
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.playing {
		return time.Time{}
	}
	return c.firstAt
}

// bytesSent is the H.264 the cameras sent, all together.
func (lc *loopCameras) bytesSent() uint64 {
	var n uint64
	for _, c := range lc.cams {
		n += c.bytes.Load()
	}
	return n
}

// pause stops (or resumes) every camera's sending, its reader kept.
func (lc *loopCameras) pause(p bool) {
	for _, c := range lc.cams {
		c.paused.Store(p)
	}
}
