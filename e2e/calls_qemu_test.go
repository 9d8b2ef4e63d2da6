package e2e

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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

// TestEchoCancellerUnderQEMU: the ARM cgo builds have the acoustic echo
// canceller of full-duplex calls (speexdsp, the target's static library
// from Debian's multiarch packages, with the tag camd_speexdsp as make
// cross builds them): media/talk's tests, cross-compiled for arm64 and
// armv7, run under qemu-user and cancel the echo as on amd64
// (TestCancellerRemovesEcho: ERLE at least 25 dB after 2 s, the near end
// through in double talk; TestCancellerAfterJump). BenchmarkCanceller's
// figures under emulation are logged (an emulated core, not a board's).
func TestEchoCancellerUnderQEMU(t *testing.T) {
	for _, c := range []struct {
		name, qemu, sysroot, cc string
		env                     []string
	}{
		{"arm64", "qemu-aarch64-static", "/usr/aarch64-linux-gnu", "aarch64-linux-gnu-gcc", []string{"GOARCH=arm64"}},
		{"armv7", "qemu-arm-static", "/usr/arm-linux-gnueabihf", "arm-linux-gnueabihf-gcc", []string{"GOARCH=arm", "GOARM=7"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			need(t, c.qemu, c.cc, strings.Replace(c.cc, "-gcc", "-g++", 1))
			bin := filepath.Join(t.TempDir(), "talk.test")
			build := exec.CommandContext(t.Context(), "go", "test", "-c", "-tags", "camd_speexdsp", "-o", bin, "../media/talk")
			build.Env = append(os.Environ(), append(c.env, "GOOS=linux", "CGO_ENABLED=1", "CC="+c.cc, "CXX="+strings.Replace(c.cc, "-gcc", "-g++", 1))...)
			if out, err := build.CombinedOutput(); err != nil {
				t.Fatalf("go test -c for %s: %v\n%s", c.name, err, out)
			}
			run := func(args ...string) string {
				t.Helper()
				cmd := exec.CommandContext(t.Context(), c.qemu, append(qemuSysroot(c.sysroot), append([]string{bin}, args...)...)...)
				out, err := cmd.CombinedOutput()
				if err != nil {
					t.Fatalf("%s %v: %v\n%s", bin, args, err, out)
				}
				return string(out)
			}
			// -short: emulated, the filter costs many times its
			// native CPU (BenchmarkCanceller, logged below).
			out := run("-test.short", "-test.run", "^(TestCancellerRemovesEcho|TestCancellerAfterJump)$", "-test.v")
			for _, name := range []string{"TestCancellerRemovesEcho", "TestCancellerAfterJump"} {
				if !strings.Contains(out, "--- PASS: "+name+" ") {
					t.Fatalf("%s did not pass under %s (no canceller in the build?):\n%s", name, c.qemu, out)
				}
			}
			bench := run("-test.run", "^$", "-test.bench", "^BenchmarkCanceller$", "-test.benchtime", "100x")
			for _, l := range strings.Split(out+bench, "\n") {
				if strings.Contains(l, "ERLE") || strings.Contains(l, "double talk") || strings.HasPrefix(l, "BenchmarkCanceller") {
					t.Logf("%s: %s", c.name, strings.TrimSpace(l))
				}
			}
		})
	}
}
