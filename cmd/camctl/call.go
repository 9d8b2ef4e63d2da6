package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strings"

	"github.com/camd-project/camd/device/api"
	"github.com/camd-project/camd/device/calls"
	"github.com/camd-project/camd/device/events"
	"github.com/camd-project/camd/storage/eventlog"
)

const callUsage = `usage:
  camctl call watch
  camctl call ring
  camctl call answer [--talk FILE.wav | --tone HZ] [--listen OUT.wav|OUT.ogg] [--video OUT.h264] [--seconds N] [CALL]
  camctl call decline [--busy] [CALL]
  camctl call hangup [CALL]

Doorbell calls (docs/calls.md). watch prints the ring events as they
come (Ctrl-C ends it); ring starts a call (owners: tests, a camera with
no button); answer takes the ringing call (or CALL), talks the WAV file
(48 kHz mono 16-bit) or a tone to the camera's speaker, writes what the
camera hears (a .wav name: 48 kHz mono 16-bit WAV, sent as G.711; else
Ogg/Opus) and sees, and hangs up after --seconds or on
Ctrl-C; decline refuses it (--busy: this phone is in another call);
hangup ends the call this user answered (on any of its devices), or
the one the owner rang that still rings.
`

func callCmd(args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("camctl call", flag.ContinueOnError)
	busy := flags.Bool("busy", false, "decline as busy")
	talkFile := flags.String("talk", "", "talk this WAV `file` (48 kHz mono 16-bit)")
	tone := flags.Float64("tone", 0, "talk a tone of `HZ` instead")
	listen := flags.String("listen", "", "write the camera's audio to this `file` (.wav: WAV; else Ogg/Opus)")
	video := flags.String("video", "", "write the camera's video to this Annex-B H.264 `file`")
	seconds := flags.Float64("seconds", 30, "hang up after this long")
	// A verb on a call takes its ID, or the call in progress (ringing,
	// but for hangup).
	onCall := func(ringing bool, act func(cam *camera, id string) error) verb {
		return verb{anyArgs, func(cam *camera, args []string) error {
			if len(args) > 1 {
				return errUsage
			}
			if len(args) == 1 {
				return act(cam, args[0])
			}
			var list api.CallList
			if err := cam.do("GET", "/api/v1/calls", nil, &list); err != nil {
				return err
			}
			switch {
			case list.Current == nil:
				return errors.New("no call is in progress")
			case ringing && list.Current.State != calls.Ringing:
				return errors.New("no call is ringing")
			}
			return act(cam, list.Current.ID)
		}}
	}
	// printCall does the call's request and prints the call it answers.
	printCall := func(cam *camera, method, path string, body any) error {
		var c calls.Call
		if err := cam.do(method, path, body, &c); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s %s\n", c.ID, c.State)
		return nil
	}
	return runVerb(flags, callUsage, map[string]verb{
		"watch": {0, func(cam *camera, _ []string) error { return watchCalls(cam, stdout) }},
		"ring": {0, func(cam *camera, _ []string) error {
			var c calls.Call
			if err := cam.do("POST", "/api/v1/calls", nil, &c); err != nil {
				return err
			}
			fmt.Fprintln(stdout, c.ID)
			return nil
		}},
		"hangup": onCall(false, func(cam *camera, id string) error {
			return printCall(cam, "DELETE", "/api/v1/calls/"+id, nil)
		}),
		"decline": onCall(true, func(cam *camera, id string) error {
			reason := "declined"
			if *busy {
				reason = "busy"
			}
			return printCall(cam, "POST", "/api/v1/calls/"+id+"/decline", api.Decline{Reason: reason})
		}),
		"answer": onCall(true, func(cam *camera, id string) error {
			talk, err := talker(*talkFile, *tone)
			if err != nil {
				return err
			}
			return watch(cam, "/api/v1/calls/"+id+"/answer", *seconds, *video, *listen, talk, stdout)
		}),
	}, args, stderr)
}

// talker returns what answer talks: the WAV file's samples once, then
// silence; or a tone; or silence.
func talker(file string, hz float64) (func([]int16), error) {
	if file != "" {
		pcm, err := readWAV(file)
		if err != nil {
			return nil, err
		}
		return func(out []int16) {
			n := copy(out, pcm)
			pcm = pcm[n:]
		}, nil
	}
	i := 0
	return func(out []int16) {
		if hz > 0 {
			for j := range out {
				out[j] = int16(12000 * math.Sin(2*math.Pi*hz*float64(i+j)/48000))
			}
		}
		i += len(out)
	}, nil
}

// readWAV reads a RIFF WAVE file of 48 kHz mono 16-bit PCM.
func readWAV(path string) ([]int16, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) < 12 || string(b[:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return nil, fmt.Errorf("%s: not a WAV file", path)
	}
	var fmtOK bool
	for p := 12; p+8 <= len(b); {
		id, size := string(b[p:p+4]), int(binary.LittleEndian.Uint32(b[p+4:p+8]))
		body := b[p+8 : min(len(b), p+8+size)]
		switch id {
		case "fmt ":
			if len(body) < 16 {
				return nil, fmt.Errorf("%s: short fmt chunk", path)
			}
			format, channels := binary.LittleEndian.Uint16(body[0:2]), binary.LittleEndian.Uint16(body[2:4])
			rate, bits := binary.LittleEndian.Uint32(body[4:8]), binary.LittleEndian.Uint16(body[14:16])
			if format != 1 || channels != 1 || rate != 48000 || bits != 16 {
				return nil, fmt.Errorf("%s: %d Hz, %d channels, %d bits (format %d): want 48000 Hz mono 16-bit PCM", path, rate, channels, bits, format)
			}
			fmtOK = true
		case "data":
			if !fmtOK {
				return nil, fmt.Errorf("%s: data before fmt", path)
			}
			pcm := make([]int16, len(body)/2)
			for i := range pcm {
				pcm[i] = int16(binary.LittleEndian.Uint16(body[2*i:]))
			}
			return pcm, nil
		}
		p += 8 + size + size%2
	}
	return nil, fmt.Errorf("%s: no data chunk", path)
}

// wavFile writes 48 kHz mono 16-bit PCM as a WAV file; close fills in
// the sizes.
type wavFile struct {
	f   *os.File
	w   *bufio.Writer
	n   int // samples written
	err error
}

func createWAV(path string) (*wavFile, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	w := &wavFile{f: f, w: bufio.NewWriter(f)}
	w.w.Write(wavHeader(0))
	return w, nil
}

// wavHeader is the 44-byte header of n samples of 48 kHz mono 16-bit PCM.
func wavHeader(n int) []byte {
	h := make([]byte, 0, 44)
	h = append(h, "RIFF"...)
	h = binary.LittleEndian.AppendUint32(h, uint32(36+2*n))
	h = append(h, "WAVEfmt "...)
	h = binary.LittleEndian.AppendUint32(h, 16)
	h = binary.LittleEndian.AppendUint16(h, 1) // PCM
	h = binary.LittleEndian.AppendUint16(h, 1) // mono
	h = binary.LittleEndian.AppendUint32(h, 48000)
	h = binary.LittleEndian.AppendUint32(h, 2*48000)
	h = binary.LittleEndian.AppendUint16(h, 2)
	h = binary.LittleEndian.AppendUint16(h, 16)
	h = append(h, "data"...)
	return binary.LittleEndian.AppendUint32(h, uint32(2*n))
}

func (w *wavFile) write(pcm []int16) {
	for _, s := range pcm {
		if w.err == nil {
			w.err = binary.Write(w.w, binary.LittleEndian, s)
		}
	}
	w.n += len(pcm)
}

func (w *wavFile) close() error {
	err := w.err
	if e := w.w.Flush(); err == nil {
		err = e
	}
	if _, e := w.f.WriteAt(wavHeader(w.n), 0); err == nil {
		err = e
	}
	if e := w.f.Close(); err == nil {
		err = e
	}
	return err
}

// watchCalls prints the doorbell's and the calls' events until Ctrl-C.
func watchCalls(cam *camera, stdout io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	req, err := http.NewRequestWithContext(ctx, "GET", cam.url("/api/v1/events/stream?type=call.*,doorbell.*"), nil)
	if err != nil {
		return err
	}
	req.Header = cam.header()
	client := *cam.client
	client.Timeout = 0 // the stream lasts
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("event stream: %s", resp.Status)
	}
	r := events.NewReader(resp.Body)
	for {
		f, err := r.Next()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if f.Event == "closed" || f.Event == "overflow" {
			return fmt.Errorf("event stream %s: %s", f.Event, f.Data)
		}
		var e eventlog.Event
		if !f.IsEvent() || json.Unmarshal([]byte(f.Data), &e) != nil {
			continue
		}
		fmt.Fprintln(stdout, callLine(e))
	}
}

// callLine is one event as a line: time, type, then its data sorted.
func callLine(e eventlog.Event) string {
	keys := make([]string, 0, len(e.Data))
	for k := range e.Data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", e.Time.Local().Format("15:04:05.000"), e.Kind)
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%q", k, e.Data[k])
	}
	if e.Snapshot != "" {
		fmt.Fprintf(&b, " snapshot=%s", e.Snapshot)
	}
	return b.String()
}
