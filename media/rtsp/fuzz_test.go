package rtsp

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/camd-project/camd/media"
)

// FuzzRTSPRequests sends whatever bytes to a running server over TCP, as
// one connection's requests (and interleaved frames), and checks that the
// server neither panics nor stops answering. A key named "any" passes
// Verify whatever its response, so that inputs reach SETUP, PLAY and
// beyond; the others meet the digest check.
func FuzzRTSPRequests(f *testing.F) {
	hub := media.NewHub(media.HubOptions{})
	hub.Begin(media.SourceInfo{Name: "fuzz", Audio: true, G711: true})
	hub.Publish(&media.Frame{Kind: media.Video, Key: true, Data: []byte{0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1e, 0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80, 0, 0, 0, 1, 0x65, 0x88, 0x84}})
	// TCP only: parallel fuzz workers would race for a UDP port pair.
	srv, err := New(hub, Options{Address: "127.0.0.1:0", MaxSessions: 4, MaxSessionsPerUser: 4,
		Verify: func(user string, proof func(string) bool) (string, error) {
			if user == "any" || proof("s3cret") {
				return "key:" + user, nil
			}
			return "", errors.New("no")
		}})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { srv.Close(); hub.Close() })
	addr := srv.Addr().String()
	auth := `Authorization: Digest username="any", realm="camd", nonce="x", uri="rtsp://h/live", response="0"` + "\r\n"
	for _, seed := range []string{
		"OPTIONS rtsp://h/live RTSP/1.0\r\nCSeq: 1\r\n\r\n",
		"DESCRIBE rtsp://h/live RTSP/1.0\r\nCSeq: 2\r\nAccept: application/sdp\r\n\r\n",
		"DESCRIBE rtsp://h/live RTSP/1.0\r\nCSeq: 2\r\n" + auth + "\r\n",
		"SETUP rtsp://h/live/trackID=0 RTSP/1.0\r\nCSeq: 3\r\n" + auth + "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n" +
			"PLAY rtsp://h/live/ RTSP/1.0\r\nCSeq: 4\r\n" + auth + "Session: 12345678\r\n\r\n",
		"SETUP rtsp://h/live/trackID=2 RTSP/1.0\r\nCSeq: 3\r\n" + auth + "Transport: RTP/AVP;unicast;client_port=5000-5001\r\n\r\n",
		"SETUP rtsp://h/live/trackID=9 RTSP/1.0\r\nCSeq: 3\r\n" + auth + "Transport: RTP/AVP;multicast\r\n\r\n",
		"$\x00\x00\x04abcd",
		"ANNOUNCE rtsp://h/live RTSP/1.0\r\nCSeq: 5\r\nContent-Type: application/sdp\r\nContent-Length: 10\r\n\r\nv=0\r\no=- 0",
		"GET_PARAMETER rtsp://h/live RTSP/1.0\r\nCSeq: 6\r\nSession: x\r\n\r\n",
		"DESCRIBE rtsp://h/live RTSP/1.0\r\nCSeq: 1\r\nAuthorization: Basic YW55OnMzY3JldA==\r\n\r\n",
		"TEARDOWN * RTSP/1.0\r\nCSeq: 1\r\n\r\n",
		"DESCRIBE rtsp://h/" + strings.Repeat("a", 5000) + " RTSP/1.0\r\nCSeq: 1\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(2 * time.Second))
		c.Write(in)
		c.(*net.TCPConn).CloseWrite() // the server reads to the end, answers, and closes
		io.Copy(io.Discard, c)
		c.Close()
		// Still answering.
		c, err = net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "OPTIONS rtsp://h/live RTSP/1.0\r\nCSeq: 1\r\n\r\n")
		buf := make([]byte, 12)
		if _, err := io.ReadFull(c, buf); err != nil || !bytes.Equal(buf, []byte("RTSP/1.0 200")) {
			t.Fatalf("the server stopped answering: %q %v", buf, err)
		}
	})
}
