package device

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/camd-project/camd/board"
	"github.com/camd-project/camd/board/sim"
	"github.com/camd-project/camd/device/calls"
	"github.com/camd-project/camd/device/events"
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
