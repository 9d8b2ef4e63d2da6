package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/camd-project/camd/media/whep"
)

func view(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("camctl view", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cf := addCameraFlags(fs)
	seconds := fs.Float64("seconds", 10, "how long to watch")
	videoOut := fs.String("video", "", "write the video to this Annex-B H.264 `file`")
	audioOut := fs.String("audio", "", "write the audio to this Ogg/Opus `file`")
	from := fs.String("from", "", "watch the recordings from `TIME` instead of live (RFC 3339, -10m, Unix seconds)")
	to := fs.String("to", "now", "with --from: until `TIME`")
	if err := parseFlags(fs, args); err != nil {
		return 2
	}
	endpoint := "/api/v1/whep"
	if *from != "" {
		// Played in real time; camd ends the session when the range does,
		// or --seconds does.
		endpoint = "/api/v1/recordings/whep?" + url.Values{"from": {*from}, "to": {*to}}.Encode()
	}
	cam, err := cf.open()
	if err != nil {
		fmt.Fprintln(stderr, "camctl:", err)
		return 1
	}
	if err := watch(cam, endpoint, *seconds, *videoOut, *audioOut, nil, stdout); err != nil {
		fmt.Fprintln(stderr, "camctl:", err)
		return 1
	}
	return 0
}

// watch plays endpoint (live view, a playback, or a call's answer when
// talk is set: docs/calls.md) for seconds, writing the video to videoOut
// and the audio to audioOut (Ogg/Opus; a call's answer, talking: a .wav
// name asks for G.711 and writes it decoded as WAV), and prints what
// came.
func watch(cam *camera, endpoint string, seconds float64, videoOut, audioOut string, talk func([]int16), stdout io.Writer) error {
	opts := whep.ViewOptions{HTTPClient: cam.client, Header: cam.header(), Talk: talk}
	var closers []func() error
	if talk != nil && strings.HasSuffix(strings.ToLower(audioOut), ".wav") {
		wav, err := createWAV(audioOut)
		if err != nil {
			return err
		}
		opts.PCM = wav.write
		closers = append(closers, wav.close)
		audioOut = ""
	}
	for _, o := range []struct {
		path string
		dst  *io.Writer
	}{{videoOut, &opts.Video}, {audioOut, &opts.Audio}} {
		if o.path == "" {
			continue
		}
		f, err := os.Create(o.path)
		if err != nil {
			return err
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
	ctx, cancel := context.WithTimeout(ctx, time.Duration(seconds*float64(time.Second)))
	defer cancel()
	st, err := whep.View(ctx, cam.url(endpoint), opts)
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
	return err
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
