package e2e

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/camd-project/camd/device/calls"
	"github.com/camd-project/camd/media/tonetest"
	"github.com/camd-project/camd/media/whep"
)

// TestCallUnderQEMU is the call smoke of the CGO-free builds: the armv6
// and mipsle binaries (passthrough camera, simulated board) run under
// qemu-user; the owner rings from the API (POST /api/v1/calls), a pion
// phone answers and talks a 1 kHz tone in PCMU (G.711 is decoded in Go
// in every build); the simulated speaker plays the tone (a Goertzel
// filter on what it wrote to sim.speaker_file, not a byte compare); the
// phone hangs up and the call ends "hung up".
func TestCallUnderQEMU(t *testing.T) {
	need(t, "ffmpeg")
	file := fixture(t, t.TempDir(), "320x240", 15, 4, 15, "300k", "baseline")
	for _, c := range []struct{ target, qemu string }{
		{"linux-armv6", "qemu-arm-static"},
		{"linux-mipsle", "qemu-mipsel-static"},
	} {
		t.Run(c.target, func(t *testing.T) {
			need(t, c.qemu)
			played := filepath.Join(t.TempDir(), "speaker.pcm")
			config := "source: passthrough\npassthrough: {file: " + file + ", loop: true}\n" +
				"board: sim\nsim: {speaker_file: " + played + "}\n"
			d := startCommand(t, config, c.qemu, filepath.Join(crossBuild(t), c.target, "camd"))
			d.pair(t)
			hdr := d.viewHeader(t)

			req, _ := http.NewRequest("POST", "https://"+d.addr+"/api/v1/calls", nil)
			req.Header = hdr.Clone()
			resp, err := insecureClient().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var call calls.Call
			json.NewDecoder(resp.Body).Decode(&call)
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("ring: %s", resp.Status)
			}

			// The phone talks until the speaker has played 1.5 s of it
			// (the file grew that much since the answer: the ring-back
			// stopped before), then hangs up (DELETE on the answer's
			// Location).
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			talked := 0
			answered := int64(-1)
			size := func() int64 {
				fi, err := os.Stat(played)
				if err != nil {
					return 0
				}
				return fi.Size()
			}
			st, err := whep.View(ctx, "https://"+d.addr+"/api/v1/calls/"+call.ID+"/answer", whep.ViewOptions{
				HTTPClient: insecureClient(), Header: hdr,
				Talk: func(pcm []int16) {
					for i := range pcm {
						pcm[i] = int16(12000 * math.Sin(2*math.Pi*1000*float64(talked+i)/48000))
					}
					talked += len(pcm)
					if answered < 0 {
						answered = size()
					} else if size()-answered >= 3*48000 { // 1.5 s of 16-bit samples
						cancel()
					}
				},
			})
			if answered < 0 || size()-answered < 3*48000 {
				t.Fatalf("the speaker played %d bytes of the phone's %d samples: %+v %v", size()-answered, talked, st, err)
			}
			list := callList(t, d)
			if len(list.History) == 0 || list.History[0].ID != call.ID || list.History[0].State != calls.Ended || list.History[0].Reason != calls.ReasonHungUp {
				t.Fatalf("after the hang-up: %+v", list)
			}

			// What the speaker played: the phone's tone, at 1 kHz, at
			// the speaker volume (80 %).
			d.stop()
			raw, err := os.ReadFile(played)
			if err != nil {
				t.Fatal(err)
			}
			pcm := make([]int16, len(raw)/2)
			binary.Decode(raw, binary.LittleEndian, pcm)
			if len(pcm) < 48000 {
				t.Fatalf("the speaker played %d samples", len(pcm))
			}
			tone := pcm[len(pcm)-48000:] // the last second: the phone's voice, not the ring-back
			var e float64
			for _, s := range tone {
				e += float64(s) * float64(s)
			}
			rms := math.Sqrt(e / float64(len(tone)))
			if g := tonetest.Share(tone, 1000); rms < 3000 || g < 0.8 {
				t.Fatalf("the speaker's last 0.5 s: RMS %.0f, %.2f of its power at 1 kHz", rms, g)
			}
			t.Logf("%s: the speaker played %.1f s, the phone's tone at RMS %.0f", c.target, float64(len(pcm))/48000, rms)
		})
	}
}
