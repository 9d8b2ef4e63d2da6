//go:build !camd_nometrics

package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Handler answers GET /metrics from a registry of src (NewRegistry).
func Handler(src Sources) http.Handler {
	return promhttp.HandlerFor(NewRegistry(src), promhttp.HandlerOpts{})
}

// NewRegistry is a registry of camd's metrics read from src, with Go's
// runtime and the process's.
func NewRegistry(src Sources) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), &collector{src})
	return reg
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("camd_"+name, help, labels, nil)
}

var (
	descViewers         = desc("viewers", "Live and playback viewer sessions, those still connecting included.")
	descSessions        = desc("viewer_sessions_total", "Viewer sessions admitted since camd started.")
	descRefused         = desc("viewer_sessions_refused_total", "Viewer sessions refused (at the viewer limits).")
	descPublished       = desc("frames_published_total", "Frames the source published to the hub.")
	descPublishedBytes  = desc("frames_published_bytes_total", "Payload bytes of the frames published (the stream's bitrate is its rate times 8).")
	descDelivered       = desc("frames_delivered_total", "Frames consumers took from their queues, by consumer kind.", "consumer")
	descDropped         = desc("frames_dropped_total", "Frames dropped for consumers whose queue was full, by consumer kind.", "consumer")
	descTargetBitrate   = desc("video_target_bitrate_bps", "The bitrate the encoder is asked for (the viewers' lowest estimate within the configured bounds).")
	descNACK            = desc("rtp_nack_total", "RTCP NACK packets received from viewers.")
	descPLI             = desc("rtp_pli_total", "RTCP PLI and FIR packets received from viewers.")
	descRecBytes        = desc("recording_bytes_total", "Bytes of fragments written to the recording volumes.")
	descRecFsyncs       = desc("recording_fsyncs_total", "Fsynced transactions of the recording store (one per fragment written).")
	descRecDropped      = desc("recording_fragments_dropped_total", "Fragments not recorded: the writer's queue was full or recording paused.")
	descRecPaused       = desc("recording_paused", "1 while recording is paused (card full, missing, read-only, failing).")
	descRecStoreBytes   = desc("recording_store_bytes", "Bytes the recording volumes hold.")
	descStorageFree     = desc("storage_free_bytes", "Free bytes of the recordings' file system.")
	descDiscovery       = desc("discovery_answers_total", "Answers sent to discovery queries and probes.")
	descPairingFailures = desc("pairing_failures_total", "Wrong pairing proofs in the device's lifetime (until factory reset).")
	descSinkDelivered   = desc("events_delivered_total", "Events delivered, by sink.", "sink")
	descSinkFailed      = desc("events_failed_total", "Event delivery attempts that failed, by sink.", "sink")
	descSinkDropped     = desc("events_dropped_total", "Events a sink gave up on (too old, a disabled webhook's queue, a backlog over its bound), by sink.", "sink")
	descSinkQueued      = desc("events_queued", "Deliveries waiting to be sent, by sink.", "sink")
	descCameraUp        = desc("nvr_camera_up", "1 while the NVR's camera sends frames, by camera.", "camera")
	descCameraFrames    = desc("nvr_camera_frames_total", "Frames received from the NVR's camera since camd started, by camera.", "camera")
	descCameraFragments = desc("nvr_camera_fragments_total", "Fragments recorded of the NVR's camera while it was pulled, by camera.", "camera")
	descCameraDropped   = desc("nvr_camera_fragments_dropped_total", "Fragments of the NVR's camera not recorded (queue full, paused), by camera.", "camera")
)

// collector reads src at each scrape.
type collector struct{ src Sources }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		descViewers, descSessions, descRefused, descPublished, descPublishedBytes, descDelivered, descDropped,
		descTargetBitrate, descNACK, descPLI, descRecBytes, descRecFsyncs, descRecDropped, descRecPaused,
		descRecStoreBytes, descStorageFree, descDiscovery, descPairingFailures, descSinkDelivered, descSinkFailed,
		descSinkDropped, descSinkQueued,
		descCameraUp, descCameraFrames, descCameraFragments, descCameraDropped,
	} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	s := c.src
	if s.Hub != nil {
		hs := s.Hub.Stats()
		counter(descPublished, hs.Published)
		counter(descPublishedBytes, hs.PublishedBytes)
		gauge(descTargetBitrate, float64(hs.TargetBitrate))
		for kind, cs := range hs.ByKind {
			counter(descDelivered, cs.Delivered, kind)
			counter(descDropped, cs.Dropped, kind)
		}
	}
	if s.Viewers != nil {
		vs := s.Viewers.Stats()
		gauge(descViewers, float64(vs.Viewers))
		counter(descSessions, vs.Served)
		counter(descRefused, vs.Refused)
		counter(descNACK, vs.NACKs)
		counter(descPLI, vs.PLIs)
	}
	if s.Store != nil {
		st := s.Store.Stats()
		counter(descRecBytes, uint64(max(st.Written, 0)))
		counter(descRecFsyncs, st.Fragments)
		paused := 0.0
		if st.Paused != "" {
			paused = 1
		}
		gauge(descRecPaused, paused)
		gauge(descRecStoreBytes, float64(st.Bytes))
		gauge(descStorageFree, float64(st.FreeBytes))
		dropped := st.Dropped
		if s.Recorder != nil {
			dropped += s.Recorder.Stats().Dropped
		}
		counter(descRecDropped, dropped)
	}
	if s.Discovery != nil {
		counter(descDiscovery, s.Discovery())
	}
	if s.Pairing != nil {
		_, lifetime := s.Pairing.Failures()
		counter(descPairingFailures, uint64(lifetime))
	}
	if s.Sinks != nil {
		for _, k := range s.Sinks() {
			counter(descSinkDelivered, k.Delivered, k.Sink)
			counter(descSinkFailed, k.Failed, k.Sink)
			counter(descSinkDropped, k.Dropped, k.Sink)
			gauge(descSinkQueued, float64(k.Queued), k.Sink)
		}
	}
	if s.Cameras != nil {
		for _, c := range s.Cameras() {
			up := 0.0
			if c.Online {
				up = 1
			}
			gauge(descCameraUp, up, c.Camera)
			counter(descCameraFrames, c.Frames, c.Camera)
			counter(descCameraFragments, c.Fragments, c.Camera)
			counter(descCameraDropped, c.Dropped, c.Camera)
		}
	}
}
