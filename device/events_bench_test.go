package device

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/camd-project/camd/device/events"
	"github.com/camd-project/camd/media"
	"github.com/camd-project/camd/media/h264/h264test"
	"github.com/camd-project/camd/storage/eventlog"
)

// benchEvent is an event of a realistic size: a motion event with its
// clip and snapshot (about 300 bytes of JSON).
func benchEvent(i int) eventlog.Event {
	now := time.Now()
	return eventlog.Event{Kind: events.Motion, Message: "motion (picture)", Snapshot: fmt.Sprintf("%016x", i),
		Clip: &eventlog.Clip{From: now}, Data: map[string]string{"cause": "picture", "seq": fmt.Sprint(i)}}
}

// percentile is the p-th percentile of sorted durations, in ms.
func percentile(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return float64(sorted[min(len(sorted)-1, int(p*float64(len(sorted))))]) / float64(time.Millisecond)
}

// BenchmarkEventToSSE measures an event's way from its producer to a
// phone: Add (the fsynced catalog commit, then the bus) to the event
// parsed from an owner's server-sent event stream over HTTPS on
// loopback, one event at a time. add-p50-ms is the commit and the bus
// alone.
func BenchmarkEventToSSE(b *testing.B) {
	d := running(b)
	s := openStream(b, d, owner(b, d), "")
	lat := make([]time.Duration, 0, b.N)
	adds := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		t0 := time.Now()
		id, err := d.events.log.Add(benchEvent(i))
		if err != nil {
			b.Fatal(err)
		}
		adds = append(adds, time.Since(t0))
		if e := s.next(); e.ID != id {
			b.Fatalf("got event %d, want %d", e.ID, id)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(lat)
	slices.Sort(adds)
	b.ReportMetric(percentile(lat, 0.5), "p50-ms")
	b.ReportMetric(percentile(lat, 0.99), "p99-ms")
	b.ReportMetric(percentile(adds, 0.5), "add-p50-ms")
}

// BenchmarkEventLoad publishes 1,000 events a second for 10 s to 50
// server-sent event streams over HTTPS (one connection each, as 50
// phones), one of them stalled (it never reads: stalledStream), while camd plays a 720p 2 Mbps stream to its
// recorder and 10 hub consumers. It fails if a stream that reads misses
// an event or gets one twice, if the stalled one is not cut off, or if
// the media path drops a frame; it reports the rate reached, the
// subscribers' delivery latency, when the stalled one was cut off, the
// most events queued for one subscriber, the heap's growth, and the
// frames published and lost.
func BenchmarkEventLoad(b *testing.B) {
	const (
		rate      = 1000
		duration  = 10 * time.Second
		readers   = 49
		consumers = 10
	)
	file := h264test.Encode(b, b.TempDir(), h264test.Stream{Width: 1280, Height: 720, Rate: 30, GOP: 60, Frames: 300, Bitrate: 2_000_000})
	for range b.N {
		d := running(b, func(c *Config) {
			c.Passthrough.FIFO, c.Passthrough.File = "", file
			c.HTTP.MaxConnectionsPerAddress = 4 * (readers + 1) // 50 phones, here from one address
		})
		token := owner(b, d)
		r := loadRun(b, d, token, rate, duration, readers, consumers)
		b.ReportMetric(r.rate, "events/s")
		b.ReportMetric(percentile(r.lat, 0.5), "p50-ms")
		b.ReportMetric(percentile(r.lat, 0.99), "p99-ms")
		b.ReportMetric(r.cutAfter.Seconds(), "stalled-cut-s")
		b.ReportMetric(float64(r.maxQueued), "max-queued")
		b.ReportMetric(r.heapMB, "heap-growth-MB")
		b.ReportMetric(float64(r.readersCut), "readers-cut")
		b.ReportMetric(float64(r.frames), "frames")
		b.ReportMetric(float64(r.lost), "frames-lost")
	}
}

type loadResult struct {
	rate      float64
	lat       []time.Duration // sorted, every reader's every event
	cutAfter  time.Duration
	maxQueued int
	heapMB    float64
	// readersCut counts the cuts of streams that read (each came
	// back and resumed).
	readersCut int
	frames     uint64
	lost       uint64
}

func loadRun(b *testing.B, d *Daemon, token string, rate int, duration time.Duration, readers, consumers int) loadResult {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var res loadResult

	// The media path: hub consumers that read every frame.
	var mediaWG sync.WaitGroup
	var subs []*media.Consumer
	for range consumers {
		c := d.hub.Subscribe(media.ConsumerOptions{Name: "bench"})
		subs = append(subs, c)
		mediaWG.Go(func() {
			for {
				if _, _, err := c.Next(ctx); err != nil {
					return
				}
			}
		})
	}
	// The recorder and the bench consumers see frames before the events
	// start.
	for deadline := time.Now().Add(30 * time.Second); d.hub.Stats().Published < 60; {
		if time.Now().After(deadline) {
			b.Fatal("no frames from the passthrough source")
		}
		time.Sleep(10 * time.Millisecond) // a benchmark's warm-up, not a test's synchronisation
	}
	dropped := func() (sum uint64) {
		for _, c := range d.hub.Stats().Consumers {
			sum += c.Dropped
		}
		return sum
	}
	published0, dropped0 := d.hub.Stats().Published, dropped()

	// The stalled phone: it reads the headers, then nothing.
	stalled := stalledStream(b, d, token)
	defer stalled.Body.Close()
	// The phones that read.
	first := d.events.bus.Stats().Published
	type reader struct {
		got, cutOff int
		last        uint64
		lat         []time.Duration
		err         error
	}
	rs := make([]*reader, readers)
	var readWG sync.WaitGroup
	total := rate * int(duration/time.Second)
	for i := range rs {
		r := &reader{lat: make([]time.Duration, 0, total)}
		rs[i] = r
		client := streamClient(false)
		s, err := dialStream(ctx, d, client, token, "")
		if err != nil {
			b.Fatal(err)
		}
		readWG.Go(func() {
			defer func() { s.Close() }()
			for r.got < total {
				f, err := s.Next()
				if err != nil {
					r.err = fmt.Errorf("after %d events: %w", r.got, err)
					return
				}
				if f.Event == "overflow" {
					// Cut off: back at once with the last ID, as an
					// EventSource comes back.
					r.cutOff++
					s.Close()
					back, err := dialStream(ctx, d, client, token, strconv.FormatUint(r.last, 10))
					for try := 1; err != nil && try < 10; try++ {
						// As an EventSource, again after a while (a
						// handshake can time out on a starved machine).
						time.Sleep(100 * time.Millisecond)
						back, err = dialStream(ctx, d, client, token, strconv.FormatUint(r.last, 10))
					}
					if err != nil {
						r.err = err
						return
					}
					s = back
					continue
				}
				if !f.IsEvent() {
					continue
				}
				var e struct { // what a phone needs to tell it apart
					ID   uint64    `json:"id"`
					Time time.Time `json:"time"`
				}
				if f.Event != "" || json.Unmarshal([]byte(f.Data), &e) != nil || f.ID != strconv.FormatUint(e.ID, 10) {
					r.err = fmt.Errorf("after %d events: %+v", r.got, f)
					return
				}
				if r.last != 0 && e.ID != r.last+1 {
					r.err = fmt.Errorf("event %d after %d", e.ID, r.last)
					return
				}
				r.lat = append(r.lat, time.Since(e.Time))
				r.last = e.ID
				r.got++
			}
		})
	}

	// Memory and the bus while it runs.
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	heap0, heapMax := ms.HeapInuse, ms.HeapInuse
	samplerDone := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(samplerDone)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			runtime.ReadMemStats(&ms)
			heapMax = max(heapMax, ms.HeapInuse)
			st := d.events.bus.Stats()
			res.maxQueued = max(res.maxQueued, st.MaxQueued)
			if st.CutOff > 0 && res.cutAfter == 0 {
				res.cutAfter = time.Since(start)
			}
		}
	}()

	// 1,000 events a second, each added when its time comes, by as many
	// producers as are waiting for a commit (as motion, the store and the
	// API add theirs): the log commits those waiting together.
	var addWG sync.WaitGroup
	var addErr error
	var mu sync.Mutex
	for i := range total {
		if wait := time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(rate))); wait > 0 {
			time.Sleep(wait) // pacing the load
		}
		addWG.Go(func() {
			if _, err := d.events.log.Add(benchEvent(i)); err != nil {
				mu.Lock()
				addErr = err
				mu.Unlock()
			}
		})
	}
	addWG.Wait()
	res.rate = float64(total) / time.Since(start).Seconds()
	if addErr != nil {
		b.Fatal(addErr)
	}
	readWG.Wait()
	cancel()
	<-samplerDone
	for i, r := range rs {
		if r.err != nil || r.got != total || r.last != first+uint64(total) {
			b.Fatalf("reader %d: %d events, the last %d (want %d): %v", i, r.got, r.last, first+uint64(total), r.err)
		}
		res.lat = append(res.lat, r.lat...)
		res.readersCut += r.cutOff
	}
	slices.Sort(res.lat)
	if st := d.events.bus.Stats(); st.CutOff != uint64(1+res.readersCut) || res.cutAfter == 0 {
		b.Fatalf("the stalled stream was not cut off: %+v, %d cuts of readers", st, res.readersCut)
	}
	res.heapMB = float64(int64(heapMax)-int64(heap0)) / (1 << 20)
	res.frames = d.hub.Stats().Published - published0
	res.lost = dropped() - dropped0
	if res.lost > 0 {
		b.Errorf("the media path lost %d of %d frames", res.lost, res.frames)
	}
	mediaWG.Wait()
	for _, c := range subs {
		c.Close()
	}
	return res
}

// stalledStream opens an event stream over HTTP/2 whose flow-control
// window is 4 KiB and never reads past its headers: a phone whose app
// stopped reading. (Over HTTP/1.1 the kernel's buffers would take a few
// MB of a stalled stream before camd's write blocks.)
func stalledStream(b *testing.B, d *Daemon, token string) *http.Response {
	client := &http.Client{Transport: &http.Transport{ForceAttemptHTTP2: true,
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
		HTTP2:           &http.HTTP2Config{MaxReceiveBufferPerStream: 4096}}}
	req, _ := http.NewRequest("GET", "https://"+d.Addr().String()+"/api/v1/events/stream", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 {
		b.Fatalf("stalled stream: %s %s", resp.Proto, resp.Status)
	}
	return resp
}
