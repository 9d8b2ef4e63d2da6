package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/camd-project/camd/media/whep"
)

func view(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("camctl view", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8443", "camera `HOST:PORT`")
	seconds := fs.Float64("seconds", 10, "how long to watch")
	videoOut := fs.String("video", "", "write the video to this Annex-B H.264 `file`")
	audioOut := fs.String("audio", "", "write the audio to this Ogg/Opus `file`")
	fingerprint := fs.String("fingerprint", "", "the camera certificate's SHA-256 `fingerprint` (hex) to pin")
	insecure := fs.Bool("insecure", false, "accept any certificate (only for a camera on this machine)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	client, err := httpClient(*fingerprint, *insecure)
	if err != nil {
		fmt.Fprintln(stderr, "camctl:", err)
		return 2
	}
	opts := whep.ViewOptions{HTTPClient: client}
	var closers []func() error
	for _, o := range []struct {
		path string
		dst  *io.Writer
	}{{*videoOut, &opts.Video}, {*audioOut, &opts.Audio}} {
		if o.path == "" {
			continue
		}
		f, err := os.Create(o.path)
		if err != nil {
			fmt.Fprintln(stderr, "camctl:", err)
			return 1
		}
		w := bufio.NewWriterSize(f, 256<<10)
		*o.dst = w
		closers = append(closers, func() error {
			if err := w.Flush(); err != nil {
				return err
			}
			return f.Close()
		})
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, time.Duration(*seconds*float64(time.Second)))
	defer cancel()
	st, err := whep.View(ctx, "https://"+*addr+"/api/v1/whep", opts)
	for _, c := range closers {
		if cerr := c(); cerr != nil && err == nil {
			err = cerr
		}
	}
	fmt.Fprintf(stdout, "frames received  %d\n", st.FramesReceived)
	fmt.Fprintf(stdout, "frames lost      %d\n", st.FramesLost)
	fmt.Fprintf(stdout, "keyframes        %d\n", st.KeyFrames)
	fmt.Fprintf(stdout, "audio packets    %d\n", st.AudioPackets)
	fmt.Fprintf(stdout, "resolution       %dx%d\n", st.Width, st.Height)
	fmt.Fprintf(stdout, "connected after  %.1f ms\n", ms(st.Connected))
	fmt.Fprintf(stdout, "first frame      %.1f ms\n", ms(st.FirstFrame))
	if err != nil {
		fmt.Fprintln(stderr, "camctl:", err)
		return 1
	}
	return 0
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// httpClient trusts exactly the camera's certificate: the one whose
// SHA-256 fingerprint was given (from the QR code or camd's log).
func httpClient(fingerprint string, insecure bool) (*http.Client, error) {
	fingerprint = strings.ToLower(strings.ReplaceAll(fingerprint, ":", ""))
	if fingerprint == "" && !insecure {
		return nil, errors.New("give the camera's --fingerprint (camd prints it at start) or --insecure")
	}
	cfg := &tls.Config{InsecureSkipVerify: true} // verified below by pinning
	if fingerprint != "" {
		want, err := hex.DecodeString(fingerprint)
		if err != nil || len(want) != sha256.Size {
			return nil, fmt.Errorf("--fingerprint %q is not a SHA-256 in hex", fingerprint)
		}
		cfg.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 {
				return errors.New("camera sent no certificate")
			}
			got := sha256.Sum256(raw[0])
			if hex.EncodeToString(got[:]) != fingerprint {
				return fmt.Errorf("camera certificate %x does not match the pinned fingerprint", got)
			}
			return nil
		}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 0}, nil
}
