//go:build !camd_nometrics

package metrics

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/camd-project/camd/media"
	"github.com/camd-project/camd/media/whep"
	"github.com/camd-project/camd/storage/recordings"
)

type (
	fakeViewers struct{ st whep.Stats }
	fakeStore   struct{ st recordings.Stats }
	fakePairing struct{ lifetime int }
)

func (f fakeViewers) Stats() whep.Stats                { return f.st }
func (f fakeStore) Stats() recordings.Stats            { return f.st }
func (f fakePairing) Failures() (window, lifetime int) { return 0, f.lifetime }

// expose renders reg in the text format and parses it back with
// Prometheus's parser.
func expose(t testing.TB, reg *prometheus.Registry) map[string]*dto.MetricFamily {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	enc := expfmt.NewEncoder(&b, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, f := range fams {
		if err := enc.Encode(f); err != nil {
			t.Fatal(err)
		}
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	out, err := p.TextToMetricFamilies(&b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCollectorReadsTheSources(t *testing.T) {
	hub := media.NewHub(media.HubOptions{})
	hub.Begin(media.SourceInfo{ForcesKeyframes: true})
	// Ten viewers come and go: their counts stay, under one label.
	for i := range 10 {
		c := hub.Subscribe(media.ConsumerOptions{Name: fmt.Sprintf("viewer %08d", i), QueueFrames: 1})
		hub.Publish(&media.Frame{Kind: media.Video, Key: true, Data: make([]byte, 100)})
		hub.Publish(&media.Frame{Kind: media.Video, Key: true, Data: make([]byte, 100)})
		c.Close()
	}
	rec := hub.Subscribe(media.ConsumerOptions{Name: "recorder", QueueFrames: 64})
	defer rec.Close()
	reg := NewRegistry(Sources{
		Hub:       hub,
		Viewers:   fakeViewers{whep.Stats{Viewers: 3, Served: 7, NACKs: 11, PLIs: 2}},
		Store:     fakeStore{recordings.Stats{Written: 4096, Fragments: 4, Paused: "card full", FreeBytes: 1 << 30}},
		Pairing:   fakePairing{5},
		Discovery: func() uint64 { return 9 },
		Cameras: func() []CameraStats {
			return []CameraStats{{Camera: "cam-1", Online: true, Frames: 300, Fragments: 10, Dropped: 1}, {Camera: "cam-2"}}
		},
	})
	fams := expose(t, reg)
	get := func(name string) []*dto.Metric {
		if fams[name] == nil {
			t.Fatalf("%s missing", name)
		}
		return fams[name].GetMetric()
	}
	for name, want := range map[string]float64{
		"camd_viewers": 3, "camd_viewer_sessions_total": 7, "camd_rtp_nack_total": 11, "camd_rtp_pli_total": 2,
		"camd_frames_published_total": 20, "camd_frames_published_bytes_total": 2000,
		"camd_recording_bytes_total": 4096, "camd_recording_fsyncs_total": 4, "camd_recording_paused": 1,
		"camd_storage_free_bytes": 1 << 30, "camd_discovery_answers_total": 9, "camd_pairing_failures_total": 5,
	} {
		m := get(name)[0]
		got := m.GetGauge().GetValue() + m.GetCounter().GetValue()
		if got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	// One series per consumer kind, not per session.
	dropped := get("camd_frames_dropped_total")
	if len(dropped) != 2 {
		t.Fatalf("%d series of frames dropped: %v", len(dropped), dropped)
	}
	for _, m := range dropped {
		if m.GetLabel()[0].GetValue() == "viewer" && m.GetCounter().GetValue() != 10 {
			t.Errorf("viewers dropped %v, want 10", m.GetCounter().GetValue())
		}
	}
	for name, want := range map[string]float64{"camd_nvr_camera_up": 1, "camd_nvr_camera_frames_total": 300,
		"camd_nvr_camera_fragments_total": 10, "camd_nvr_camera_fragments_dropped_total": 1} {
		ms := get(name)
		if len(ms) != 2 || ms[0].GetLabel()[0].GetValue() != "cam-1" || ms[0].GetGauge().GetValue()+ms[0].GetCounter().GetValue() != want {
			t.Errorf("%s: %v, want %v for cam-1", name, ms, want)
		}
	}
	if fams["camd_events_delivered_total"] != nil {
		t.Errorf("sinks reported without any sink")
	}
}

// BenchmarkScrape is the cost of one scrape with 16 viewers and a
// recorder on the hub (the hub's lock is held while their counters are
// copied: the only time a scrape touches the media path).
func BenchmarkScrape(b *testing.B) {
	hub := media.NewHub(media.HubOptions{})
	hub.Begin(media.SourceInfo{ForcesKeyframes: true})
	for i := range 16 {
		defer hub.Subscribe(media.ConsumerOptions{Name: fmt.Sprintf("viewer %08d", i)}).Close()
	}
	defer hub.Subscribe(media.ConsumerOptions{Name: "recorder"}).Close()
	reg := NewRegistry(Sources{Hub: hub, Viewers: fakeViewers{}, Store: fakeStore{}, Pairing: fakePairing{}})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := reg.Gather(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHubStats is the part of a scrape that holds the hub's lock.
func BenchmarkHubStats(b *testing.B) {
	hub := media.NewHub(media.HubOptions{})
	for i := range 16 {
		defer hub.Subscribe(media.ConsumerOptions{Name: fmt.Sprintf("viewer %08d", i)}).Close()
	}
	for b.Loop() {
		hub.Stats()
	}
}

// Each sink gets its own series of the four counts.
func TestCollectorReadsTheSinks(t *testing.T) {
	reg := NewRegistry(Sources{Sinks: func() []SinkStats {
		return []SinkStats{
			{Sink: "webpush", Delivered: 3, Failed: 1},
			{Sink: "webhooks", Delivered: 5, Failed: 7, Dropped: 2, Queued: 4},
			{Sink: "mqtt", Delivered: 11, Dropped: 6, Queued: 1},
		}
	}})
	fams := expose(t, reg)
	want := map[string]map[string]float64{
		"camd_events_delivered_total": {"webpush": 3, "webhooks": 5, "mqtt": 11},
		"camd_events_failed_total":    {"webpush": 1, "webhooks": 7, "mqtt": 0},
		"camd_events_dropped_total":   {"webpush": 0, "webhooks": 2, "mqtt": 6},
		"camd_events_queued":          {"webpush": 0, "webhooks": 4, "mqtt": 1},
	}
	for name, bySink := range want {
		f := fams[name]
		if f == nil {
			t.Fatalf("%s missing", name)
		}
		got := map[string]float64{}
		for _, m := range f.GetMetric() {
			got[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
		if fmt.Sprint(got) != fmt.Sprint(bySink) {
			t.Errorf("%s = %v, want %v", name, got, bySink)
		}
	}
	if fams["camd_events_queued"].GetType() != dto.MetricType_GAUGE || fams["camd_events_dropped_total"].GetType() != dto.MetricType_COUNTER {
		t.Errorf("types: queued %v, dropped %v", fams["camd_events_queued"].GetType(), fams["camd_events_dropped_total"].GetType())
	}
}
