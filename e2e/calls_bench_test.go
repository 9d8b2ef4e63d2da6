package e2e

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/camd-project/camd/device/api"
	"github.com/camd-project/camd/device/calls"
	"github.com/camd-project/camd/media/whep"
)

// BenchmarkCallFootprint is what one doorbell call costs the camera: camd's
// CPU and resident memory over 60 s of an answered call (the camera's
// picture and microphone to the phone, the phone's voice, a 1 kHz tone in
// PCMU, to the simulated speaker through the jitter buffer and decoder),
// against the 10 s before it rang with nobody watching. The phone is
// camctl's client (whep.View with Talk) in this process, on loopback;
// camd is the synthetic 720p30 camera, whose encoder runs all along.
// extra-* are the call's own.
func BenchmarkCallFootprint(b *testing.B) {
	for range b.N {
		callFootprint(b, 60*time.Second)
	}
}

// sample is camd's mean RSS and CPU share over d.
func sample(b *testing.B, pid int, d time.Duration) (rssMB, cpuPct float64) {
	_, cpu0 := procStat(b, pid)
	t0 := time.Now()
	var sum int64
	n := 0
	for time.Since(t0) < d {
		rss, _ := procStat(b, pid)
		sum += rss
		n++
		time.Sleep(250 * time.Millisecond)
	}
	_, cpu1 := procStat(b, pid)
	return float64(sum) / float64(n) / (1 << 20), 100 * float64(cpu1-cpu0) / float64(time.Since(t0))
}

var playedLine = regexp.MustCompile(`calls: phone audio.* played=(\d+)`)

func callFootprint(b *testing.B, talk time.Duration) {
	d := startDaemon(b)
	pid := d.cmd.Process.Pid
	hdr := d.viewHeader(b)
	time.Sleep(5 * time.Second) // settles: the encoder's first seconds
	idleRSS, idleCPU := sample(b, pid, 10*time.Second)

	req, _ := http.NewRequest("POST", "https://"+d.addr+"/api/v1/calls", nil)
	req.Header = hdr.Clone()
	resp, err := insecureClient().Do(req)
	if err != nil {
		b.Fatal(err)
	}
	var c calls.Call
	json.NewDecoder(resp.Body).Decode(&c)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		b.Fatalf("ring: %s", resp.Status)
	}

	settle := 3 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), settle+talk+5*time.Second)
	defer cancel()
	type result struct {
		st  whep.ViewStats
		err error
	}
	done := make(chan result, 1)
	talked := 0
	conn := viewerSocket(b)
	go func() {
		defer conn.Close()
		st, err := whep.View(ctx, "https://"+d.addr+"/api/v1/calls/"+c.ID+"/answer", whep.ViewOptions{
			HTTPClient: insecureClient(), Header: hdr, Conn: conn,
			Talk: func(pcm []int16) {
				for i := range pcm {
					pcm[i] = int16(12000 * math.Sin(2*math.Pi*1000*float64(talked+i)/48000))
				}
				talked += len(pcm)
			},
		})
		done <- result{st, err}
	}()
	time.Sleep(settle) // answered, connected, talking
	callRSS, callCPU := sample(b, pid, talk)
	cancel() // hangs up: DELETE on the answer's Location
	r := <-done
	if r.err != nil || r.st.FramesReceived < 100 || r.st.AudioPackets < 100 {
		b.Fatalf("the phone: %+v %v", r.st, r.err)
	}

	// The call ended, hung up; the speaker played the phone's voice.
	list := callList(b, d)
	if len(list.History) == 0 || list.History[0].ID != c.ID || list.History[0].State != calls.Ended || list.History[0].Reason != calls.ReasonHungUp {
		b.Fatalf("after the hang-up: %+v", list)
	}
	deadline := time.Now().Add(5 * time.Second)
	var played float64
	for played == 0 && time.Now().Before(deadline) {
		if m := playedLine.FindStringSubmatch(d.log()); m != nil {
			played, _ = strconv.ParseFloat(m[1], 64)
		} else {
			time.Sleep(50 * time.Millisecond) // polls camd's log only
		}
	}
	if played < 100 {
		b.Fatalf("the speaker played %v packets of the phone's voice", played)
	}
	b.ReportMetric(idleCPU, "idle-cpu-%")
	b.ReportMetric(callCPU, "call-cpu-%")
	b.ReportMetric(callCPU-idleCPU, "extra-cpu-%")
	b.ReportMetric(idleRSS, "idle-rss-MB")
	b.ReportMetric(callRSS, "call-rss-MB")
	b.ReportMetric(callRSS-idleRSS, "extra-rss-MB")
	b.ReportMetric(list.History[0].Transitions[len(list.History[0].Transitions)-1].Time.Sub(list.History[0].Answered).Seconds(), "call-s")
	b.ReportMetric(played, "speaker-packets")
	b.ReportMetric(0, "ns/op")
	d.stop()
}

// callList reads GET /api/v1/calls as the owner.
func callList(b testing.TB, d *daemon) api.CallList {
	b.Helper()
	req, _ := http.NewRequest("GET", "https://"+d.addr+"/api/v1/calls", nil)
	req.Header = d.viewHeader(b)
	resp, err := insecureClient().Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var list api.CallList
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil || resp.StatusCode != http.StatusOK {
		b.Fatalf("calls: %s %v", resp.Status, err)
	}
	return list
}
