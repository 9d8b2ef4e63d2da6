package testenv

import (
	"fmt"
	"net"
	"testing"
)

// FreeRTPPort returns an even UDP port on 127.0.0.1 whose next one is
// free too, for an RTP/RTCP pair (as RTSP's server_port wants). Another
// program may take it before the test does, as with any free port.
func FreeRTPPort(tb testing.TB) int {
	tb.Helper()
	for range 100 {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		p := c.LocalAddr().(*net.UDPAddr).Port &^ 1
		c.Close()
		a, err1 := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p))
		b, err2 := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p+1))
		for _, c := range []net.PacketConn{a, b} {
			if c != nil {
				c.Close()
			}
		}
		if err1 == nil && err2 == nil {
			return p
		}
	}
	tb.Fatal("no free RTP port pair")
	return 0
}
