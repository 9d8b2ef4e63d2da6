package api

import (
	"context"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/camd-project/camd/discovery/lan"
)

// Discovered lists the cameras on the LAN that an NVR could add
// (docs/discovery.md, "Cameras an NVR could add").
type Discovered struct {
	Finder cameraFinder // device's LAN finder
	busy   atomic.Bool
}

// cameraFinder asks the LAN for cameras until ctx ends.
type cameraFinder interface {
	FindCameras(ctx context.Context) (DiscoveredAnswer, error)
}

// DiscoveredAnswer is the body of GET /api/v1/cameras/discovered.
type DiscoveredAnswer struct {
	// Cameras are the cameras that answered within the window and that
	// the NVR has not added, camd cameras first, each kind by name.
	Cameras []lan.Camera `json:"cameras"`
	// Interfaces are the interfaces asked on.
	Interfaces []string `json:"interfaces"`
	// NotSearched says why no interface was asked on (camd listens on
	// loopback, or none of discovery.interfaces is up).
	NotSearched string `json:"not_searched,omitempty"`
	// WindowMs is how long the LAN was asked.
	WindowMs int64 `json:"window_ms"`
}

// The query window of a search: ?window=DURATION within these bounds.
const (
	DefaultDiscoveryWindow = 2 * time.Second
	minDiscoveryWindow     = 500 * time.Millisecond
	maxDiscoveryWindow     = 5 * time.Second
)

func (a *Discovered) routes() []Route {
	return []Route{
		{"GET /api/v1/cameras/discovered", Owner, a.handleList},
	}
}

// handleList asks the LAN for ?window (default 2 s, 0.5–5 s) and answers
// what answered. One search runs at a time (they share the mDNS port):
// another gets 429 with Retry-After. A client that goes away ends its
// search.
func (a *Discovered) handleList(w http.ResponseWriter, r *http.Request) {
	if a.Finder == nil {
		jsonError(w, http.StatusServiceUnavailable, "discovery: not available")
		return
	}
	window := DefaultDiscoveryWindow
	if s := r.URL.Query().Get("window"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < minDiscoveryWindow || d > maxDiscoveryWindow {
			jsonError(w, http.StatusBadRequest, "discovery: window is a duration from 500ms to 5s")
			return
		}
		window = d
	}
	if !a.busy.CompareAndSwap(false, true) {
		w.Header().Set("Retry-After", strconv.Itoa(int(maxDiscoveryWindow/time.Second)))
		jsonError(w, http.StatusTooManyRequests, "discovery: a search is under way")
		return
	}
	defer a.busy.Store(false)
	ctx, cancel := context.WithTimeout(r.Context(), window)
	defer cancel()
	start := time.Now()
	ans, err := a.Finder.FindCameras(ctx)
	if err != nil {
		jsonError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if ans.Cameras == nil {
		ans.Cameras = []lan.Camera{}
	}
	if ans.Interfaces == nil {
		ans.Interfaces = []string{}
	}
	ans.WindowMs = time.Since(start).Milliseconds()
	writeJSON(w, ans)
}
