// Command go2rtc-whep plays a WHEP stream the way go2rtc does, with
// go2rtc's own WebRTC client (github.com/AlexxIT/go2rtc/pkg/webrtc): it
// offers recvonly video and audio, posts the offer, and binds to the
// first codec of each answered media, as go2rtc's streams do. The video
// it receives is depacketized by go2rtc's H.264 code and written as
// Annex-B to -out for a decoder to check. It prints one JSON line:
// {"first_frame_ms", "frames", "codec"}.
//
// camd's interop tests (e2e, TestInteropGo2RTC) build it in its own module
// so that go2rtc never enters camd's go.mod.
package main

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/AlexxIT/go2rtc/pkg/core"
	"github.com/AlexxIT/go2rtc/pkg/h264"
	"github.com/AlexxIT/go2rtc/pkg/h264/annexb"
	"github.com/AlexxIT/go2rtc/pkg/webrtc"
	"github.com/pion/rtp"
	pion "github.com/pion/webrtc/v4"
)

func main() {
	url := flag.String("url", "", "WHEP endpoint (https://host:port/api/v1/whep)")
	token := flag.String("token", "", "bearer token")
	pin := flag.String("fingerprint", "", "SHA-256 of the server's certificate (hex); the certificate is trusted only if it matches")
	frames := flag.Int("frames", 60, "video frames to receive")
	out := flag.String("out", "", "file for the received video (H.264 Annex-B)")
	timeout := flag.Duration("timeout", 30*time.Second, "give up after")
	flag.Parse()
	if err := run(*url, *token, *pin, *frames, *out, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "go2rtc-whep:", err)
		os.Exit(1)
	}
}

func pinnedClient(pin string) *http.Client {
	want, _ := hex.DecodeString(strings.ReplaceAll(strings.ToLower(pin), ":", ""))
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{
			InsecureSkipVerify: true, // verified below: the certificate is self-signed and pinned
			VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
				if len(raw) == 0 {
					return errors.New("no certificate")
				}
				if sum := sha256.Sum256(raw[0]); !bytes.Equal(sum[:], want) {
					return fmt.Errorf("certificate fingerprint %x does not match the pin", sum)
				}
				return nil
			},
		}},
	}
}

func run(url, token, pin string, want int, out string, timeout time.Duration) error {
	client := pinnedClient(pin)
	api, err := webrtc.NewAPI()
	if err != nil {
		return err
	}
	pc, err := api.NewPeerConnection(pion.Configuration{})
	if err != nil {
		return err
	}
	conn := webrtc.NewConn(pc)
	conn.Mode = core.ModeActiveProducer
	defer conn.Close()

	start := time.Now()
	offer, err := conn.CreateCompleteOffer([]*core.Media{
		{Kind: core.KindVideo, Direction: core.DirectionRecvonly},
		{Kind: core.KindAudio, Direction: core.DirectionRecvonly},
	})
	if err != nil {
		return err
	}
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(offer))
	req.Header.Set("Content-Type", "application/sdp")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("POST: %s %s", resp.Status, answer)
	}
	if loc := resp.Header.Get("Location"); loc != "" {
		defer func() {
			del, _ := http.NewRequest(http.MethodDelete, resolve(url, loc), nil)
			del.Header.Set("Authorization", "Bearer "+token)
			if r, err := client.Do(del); err == nil {
				r.Body.Close()
			}
		}()
	}
	if err := conn.SetAnswer(string(answer)); err != nil {
		return err
	}

	// go2rtc's streams take the first codec of each media the producer
	// offers (internal/streams: producer.GetTrack(media, media.Codecs[0])).
	var video *core.Media
	for _, m := range conn.GetMedias() {
		if m.Kind == core.KindVideo && m.Direction == core.DirectionRecvonly {
			video = m
		}
	}
	if video == nil || len(video.Codecs) == 0 {
		return errors.New("the answer has no video")
	}
	codec := video.Codecs[0]
	recv, err := conn.GetTrack(video, codec)
	if err != nil {
		return err
	}
	var f io.Writer = io.Discard
	if out != "" {
		file, err := os.Create(out)
		if err != nil {
			return err
		}
		defer file.Close()
		f = file
	}
	var mu sync.Mutex
	var first time.Duration
	n := 0
	done := make(chan struct{})
	sender := core.NewSender(video, codec)
	sender.Handler = h264.RTPDepay(codec, func(p *rtp.Packet) {
		mu.Lock()
		defer mu.Unlock()
		if n >= want {
			return
		}
		if n == 0 {
			if !h264.IsKeyframe(p.Payload) {
				return // start at a keyframe
			}
			first = time.Since(start)
		}
		f.Write(annexb.DecodeAVCC(p.Payload, true))
		if n++; n == want {
			close(done)
		}
	})
	sender.WithParent(recv).Start()
	defer sender.Close()

	select {
	case <-done:
	case <-time.After(timeout):
		mu.Lock()
		defer mu.Unlock()
		return fmt.Errorf("%d of %d frames on payload type %d (%s) after %v", n, want, codec.PayloadType, codec.FmtpLine, timeout)
	}
	mu.Lock()
	defer mu.Unlock()
	return json.NewEncoder(os.Stdout).Encode(map[string]any{
		"first_frame_ms": float64(first.Microseconds()) / 1000, "frames": n,
		"codec": fmt.Sprintf("%s/%d %s", codec.Name, codec.PayloadType, codec.FmtpLine),
	})
}

// resolve makes a Location relative to the endpoint absolute.
func resolve(endpoint, loc string) string {
	if strings.HasPrefix(loc, "/") {
		if i := strings.Index(endpoint[len("https://"):], "/"); i >= 0 {
			return endpoint[:len("https://")+i] + loc
		}
	}
	return loc
}
