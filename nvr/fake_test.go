package nvr_test

import (
	"net"
	"sync"
	"testing"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/pion/rtp"
)

// fakeRTSP is a gortsplib server that describes desc and, to whoever
// plays, sends what send writes: the cameras that misbehave.
type fakeRTSP struct {
	srv    *gortsplib.Server
	addr   string
	stream *gortsplib.ServerStream
	desc   *description.Session

	mu      sync.Mutex
	playing int
}

func startFakeRTSP(t *testing.T, desc *description.Session) *fakeRTSP {
	t.Helper()
	f := &fakeRTSP{desc: desc}
	f.srv = &gortsplib.Server{Handler: f, RTSPAddress: "127.0.0.1:0", Listen: func(network, address string) (net.Listener, error) {
		l, err := net.Listen(network, address)
		if err == nil {
			f.addr = l.Addr().String()
		}
		return l, err
	}}
	if err := f.srv.Start(); err != nil {
		t.Fatal(err)
	}
	f.stream = &gortsplib.ServerStream{Server: f.srv, Desc: desc}
	if err := f.stream.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.stream.Close(); f.srv.Close() })
	return f
}

func (f *fakeRTSP) url() string { return "rtsp://" + f.addr + "/live" }

func (f *fakeRTSP) OnDescribe(*gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	return &base.Response{StatusCode: base.StatusOK}, f.stream, nil
}

func (f *fakeRTSP) OnSetup(*gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	return &base.Response{StatusCode: base.StatusOK}, f.stream, nil
}

func (f *fakeRTSP) OnPlay(*gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	f.mu.Lock()
	f.playing++
	f.mu.Unlock()
	return &base.Response{StatusCode: base.StatusOK}, nil
}

func (f *fakeRTSP) plays() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.playing
}

// write sends pkt on the first media.
func (f *fakeRTSP) write(pkt *rtp.Packet) error {
	return f.stream.WritePacketRTP(f.desc.Medias[0], pkt)
}
