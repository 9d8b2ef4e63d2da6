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

// SinkStats counts the events one sink (web push, webhooks, MQTT)
// delivered and failed to deliver.
type SinkStats struct {
	Sink              string
	Delivered, Failed uint64
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
	// Sinks returns the event sinks' counters; none exist yet.
	Sinks func() []SinkStats
}
