package metrics

import (
	"github.com/camd-project/camd/media"
	"github.com/camd-project/camd/media/recorder"
	"github.com/camd-project/camd/media/whep"
	"github.com/camd-project/camd/storage/recordings"
)

// The sources a scrape reads, each the one method it calls.
type (
	hubStats       interface{ Stats() media.Stats }
	viewerStats    interface{ Stats() whep.Stats }
	storeStats     interface{ Stats() recordings.Stats }
	recorderStats  interface{ Stats() recorder.Stats }
	pairingFailure interface{ Failures() (window, lifetime int) }
)

// SinkStats counts what one sink (web push, webhooks, MQTT) did with
// the events it carries off the device since camd started.
type SinkStats struct {
	Sink string
	// Delivered: taken by the receiver (a push service's 2xx, a
	// webhook's 2xx, the broker's PUBACK). Failed: attempts that were
	// not (a webhook's retry counts each time). Dropped: given up
	// (too old, a disabled webhook's queue, an MQTT backlog over its
	// bound).
	Delivered, Failed, Dropped uint64
	// Queued is how many wait to be sent now.
	Queued int
}

// CameraStats is one camera of an NVR (docs/nvr.md).
type CameraStats struct {
	Camera string
	// Online is true while frames arrive.
	Online bool
	// Frames counts the frames received, Fragments the fragments its
	// recorder wrote and Dropped those it could not.
	Frames, Fragments, Dropped uint64
}

// Sources are what the collector reads at each scrape. A nil source
// exports nothing.
type Sources struct {
	Hub      hubStats
	Viewers  viewerStats
	Store    storeStats
	Recorder recorderStats
	Pairing  pairingFailure
	// Discovery returns the answers sent to discovery queries and probes
	// (mDNS and WS-Discovery).
	Discovery func() uint64
	// Sinks returns the counters of the event sinks that run.
	Sinks func() []SinkStats
	// Cameras returns an NVR's cameras (removed ones left out).
	Cameras func() []CameraStats
}
