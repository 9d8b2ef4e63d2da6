package device

import (
	"context"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/camd-project/camd/board"
	"github.com/camd-project/camd/board/sim"
	"github.com/camd-project/camd/device/calls"
	"github.com/camd-project/camd/device/events"
	"github.com/camd-project/camd/media/whep"
)

// BenchmarkDoorbellToRingEvent measures a press of the simulated
// doorbell to the call.ringing event parsed from an owner's server-sent
// event stream over HTTPS on loopback: the input's first edge (the
// doorbell rings on it; the debounce only swallows the bounces), the
// call, its events stored in the catalog (fsynced), the bus, the stream.
func BenchmarkDoorbellToRingEvent(b *testing.B) {
	d := running(b)
	s := openStream(b, d, owner(b, d), "")
	lat := make([]time.Duration, 0, b.N)
	for range b.N {
		t0 := time.Now()
		d.board.sim.Press(sim.Doorbell)
		var e = s.next()
		for e.Kind != events.CallRinging {
			e = s.next()
		}
		lat = append(lat, time.Since(t0))
		b.StopTimer()
		d.calls.m.Hangup(e.Data["call"], "", calls.ReasonHungUp)
		d.board.sim.Release(sim.Doorbell)
		time.Sleep(3 * board.DefaultDebounce) // paces the next press after the release counted
		b.StartTimer()
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(percentile(lat, 0.5), "p50-ms")
	b.ReportMetric(percentile(lat, 0.99), "p99-ms")
}

// BenchmarkAnswerToFirstAudio measures a phone's answer (a pion peer on
// loopback, talking PCMU from the moment it has the answer) from its
// POST to the first sample of its voice out of the simulated speaker:
// the offer's checks, the answer, ICE and DTLS, the jitter buffer and
// the G.711 decoder.
func BenchmarkAnswerToFirstAudio(b *testing.B) {
	for _, mime := range []string{webrtc.MimeTypePCMU, webrtc.MimeTypeOpus} {
		b.Run(strings.TrimPrefix(mime, "audio/"), func(b *testing.B) { benchAnswer(b, mime) })
	}
}

func benchAnswer(b *testing.B, mime string) {
	t := b
	d := running(b)
	ownerToken := owner(b, d)
	spk := d.board.sim.Speaker
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		c, err := d.calls.m.Ring("api", "bench")
		if err != nil {
			b.Fatal(err)
		}
		p := newPhoneTalking(t, mime)
		offer := p.offer(t)
		b.StartTimer()
		t0 := time.Now()
		code, body := p.answer(t, d, c.ID, ownerToken, offer)
		if code != http.StatusCreated {
			b.Fatalf("answer: %d %s", code, body)
		}
		// The ring-back tone stopped before the answer came back: what
		// the speaker plays from now on is the phone's.
		played, _ := spk.Played()
		p.talkTone(t)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = spk.Wait(ctx, len(played)+1)
		cancel()
		if err != nil {
			b.Fatal("no audio from the phone")
		}
		lat = append(lat, time.Since(t0))
		b.StopTimer()
		d.calls.m.Hangup(c.ID, "", calls.ReasonHungUp)
		p.close()
		b.StartTimer()
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(percentile(lat, 0.5), "p50-ms")
	b.ReportMetric(percentile(lat, 0.99), "p99-ms")
}

// onsets finds the onsets of bursts in a stream of PCM blocks: the first
// sample louder than onsetLevel after at least onsetQuiet of quiet.
type onsets struct {
	quiet int // samples below the level since the last loud one
}

const (
	onsetLevel = 1500                   // of 32767: the beep peaks near 9,800, the phone's burst at 8,000
	onsetQuiet = 200 * time.Millisecond // between bursts
)

// find returns the index of the first onset in pcm, or -1.
func (o *onsets) find(pcm []int16) int {
	at := -1
	for i, s := range pcm {
		if s > onsetLevel || s < -onsetLevel {
			if at < 0 && o.quiet >= int(onsetQuiet*48000/time.Second) {
				at = i
			}
			o.quiet = 0
			continue
		}
		o.quiet++
	}
	return at
}

// BenchmarkMouthToEar measures a call's audio latency each way on
// loopback, one sample per second of an answered call (camctl's client
// whep.View as the phone, PCMU both ways, half duplex):
//
//   - up: a 100 ms 1 kHz burst the phone starts at each wall second's
//     .500, from the send of its first packet to its onset out of the
//     simulated speaker (the time of the speaker's Play that carries it,
//     plus the onset's place in what that Play added): RTP over loopback,
//     the jitter buffer, the G.711 decoder and its low-pass. The
//     simulated speaker plays at once; a real one adds its queue.
//   - down: the synthetic camera's beep, which starts on each wall
//     second, to its onset in the G.711 the phone decodes (the time the
//     packet carrying it arrived, plus the onset's place in it): the 20 ms
//     block filled before it is sent, the encoders, the hub, the send
//     path, loopback.
func BenchmarkMouthToEar(b *testing.B) {
	d := running(b, syntheticSource)
	ownerToken := owner(b, d)
	c, err := d.calls.m.Ring("api", "bench")
	if err != nil {
		b.Fatal(err)
	}
	spk := d.board.sim.Speaker
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second+time.Duration(b.N)*2*time.Second)
	defer cancel()

	var (
		mu       sync.Mutex
		sends    []time.Time // the phone's burst onsets, as sent
		up, down []time.Duration
		answered = make(chan struct{})
	)
	done := func() bool { return len(up) >= b.N && len(down) >= b.N }
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { // the speaker's ear
		select {
		case <-answered:
		case <-ctx.Done():
			return
		}
		var o onsets
		played, _ := spk.Played()
		seen := len(played)
		for {
			if spk.Wait(ctx, seen+1) != nil {
				return
			}
			now := time.Now()
			pcm, _ := spk.Played()
			i := o.find(pcm[seen:])
			if i >= 0 {
				ear := now.Add(time.Duration(i) * time.Second / 48000)
				mu.Lock()
				if n := len(sends); n > 0 && ear.Sub(sends[n-1]) < 400*time.Millisecond {
					up = append(up, ear.Sub(sends[n-1]))
				}
				if done() {
					cancel()
				}
				mu.Unlock()
			}
			seen = len(pcm)
		}
	})
	var talking bool
	var sample int
	var ear onsets
	b.ResetTimer()
	_, err = whep.View(ctx, "https://"+d.Addr().String()+"/api/v1/calls/"+c.ID+"/answer", whep.ViewOptions{
		HTTPClient: testClient(), Header: http.Header{"Authorization": {"Bearer " + ownerToken}},
		Talk: func(pcm []int16) {
			now := time.Now()
			into := now.Sub(now.Truncate(time.Second))
			burst := into >= 500*time.Millisecond && into < 600*time.Millisecond
			if burst && !talking {
				mu.Lock()
				sends = append(sends, now)
				mu.Unlock()
			}
			talking = burst
			for i := range pcm {
				pcm[i] = 0
				if burst {
					pcm[i] = int16(8000 * math.Sin(2*math.Pi*1000*float64(sample+i)/48000))
				}
			}
			sample += len(pcm)
			select {
			case <-answered:
			default:
				close(answered)
			}
		},
		PCM: func(pcm []int16) {
			now := time.Now()
			if i := ear.find(pcm); i >= 0 {
				heard := now.Add(time.Duration(i) * time.Second / 48000)
				mu.Lock()
				down = append(down, heard.Sub(heard.Truncate(time.Second)))
				if done() {
					cancel()
				}
				mu.Unlock()
			}
		},
	})
	b.StopTimer()
	cancel()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if !done() {
		b.Fatalf("%d onsets up and %d down of %d: %v", len(up), len(down), b.N, err)
	}
	slices.Sort(up)
	slices.Sort(down)
	b.ReportMetric(percentile(up, 0.5), "up-p50-ms")
	b.ReportMetric(percentile(up, 0.99), "up-p99-ms")
	b.ReportMetric(percentile(down, 0.5), "down-p50-ms")
	b.ReportMetric(percentile(down, 0.99), "down-p99-ms")
}
