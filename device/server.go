package device

import (
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
	"runtime"
	"slices"
	"time"

	"github.com/camd-project/camd/device/connlimit"
)

//go:embed web
var webFiles embed.FS

// Role says who may call a route.
type Role int

// Roles, from least to most privileged.
const (
	// Public routes answer anyone: the health check, the web page's static
	// files (they hold no data) and, with pairing, the pairing exchange.
	Public Role = iota
	// Viewer routes need a paired credential: live view and stats.
	Viewer
	// Owner routes change the device.
	Owner
)

func (r Role) String() string {
	return [...]string{"public", "viewer", "owner"}[r]
}

// route is one entry of the HTTP API. Every handler is registered through
// the routes table so that authorization covers routes added later.
type route struct {
	pattern string
	role    Role
	handler http.HandlerFunc
}

// routes is every route camd serves, gathered from each feature's group.
// A feature adds its group here and nowhere else.
func (d *Daemon) routes() []route {
	return slices.Concat(
		d.webRoutes(),
		d.pairingRoutes(),
		d.liveRoutes(),
		d.recordingRoutes(),
		d.settingsRoutes(),
	)
}

func (d *Daemon) webRoutes() []route {
	web, _ := fs.Sub(webFiles, "web")
	static := http.FileServerFS(web)
	return []route{
		{"GET /health", Public, d.handleHealth},
		{"GET /{$}", Public, static.ServeHTTP},
		{"GET /app.js", Public, static.ServeHTTP},
		{"GET /app.css", Public, static.ServeHTTP},
	}
}

func (d *Daemon) liveRoutes() []route {
	return []route{
		{"POST /api/v1/whep", Viewer, d.whep.HandleOffer},
		{"PATCH /api/v1/whep/{id}", Viewer, d.whep.HandlePatch},
		{"DELETE /api/v1/whep/{id}", Viewer, d.whep.HandleDelete},
		{"GET /api/v1/stats", Viewer, d.handleStats},
	}
}

// handler builds the HTTP handler from the routes table.
func (d *Daemon) handler() http.Handler {
	mux := http.NewServeMux()
	for _, r := range d.routes() {
		mux.Handle(r.pattern, d.authorize(r.role, r.handler))
	}
	return securityHeaders(mux)
}

func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Content-Security-Policy", "default-src 'self'; media-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'")
		hd.Set("Cache-Control", "no-store")
		h.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func (d *Daemon) handleHealth(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, map[string]any{"status": "ok", "version": Version})
}

// handleStats reports the stream and the viewers.
func (d *Daemon) handleStats(w http.ResponseWriter, _ *http.Request) {
	hs := d.hub.Stats()
	ws := d.whep.Stats()
	type viewer struct {
		State         string  `json:"state"`
		FirstFrameMs  float64 `json:"first_frame_ms"`
		Frames        uint64  `json:"frames"`
		Packets       uint64  `json:"packets"`
		Resent        uint64  `json:"resent"`
		NACKs         uint64  `json:"nacks"`
		PLIs          uint64  `json:"plis"`
		Dropped       uint64  `json:"dropped"`
		EstimateBps   int     `json:"estimate_bps"`
		ConnectedSecs float64 `json:"age_s"`
	}
	out := struct {
		Source        string   `json:"source"`
		Published     uint64   `json:"frames_published"`
		ForcedKeys    uint64   `json:"keyframes_forced"`
		TargetBitrate int      `json:"target_bitrate"`
		Viewers       []viewer `json:"viewers"`
		Served        uint64   `json:"viewers_served"`
		Refused       uint64   `json:"viewers_refused"`
		LatencyP50Ms  float64  `json:"latency_p50_ms"`
		LatencyP99Ms  float64  `json:"latency_p99_ms"`
		Goroutines    int      `json:"goroutines"`

		// Connections counts the HTTPS connections, and those refused.
		Connections connlimit.Stats `json:"connections"`
	}{
		Goroutines: runtime.NumGoroutine(),
		Source:     hs.Source, Published: hs.Published, ForcedKeys: hs.ForcedKeys, TargetBitrate: hs.TargetBitrate,
		Served: ws.Served, Refused: ws.Refused,
		LatencyP50Ms: ms(ws.LatencyP50), LatencyP99Ms: ms(ws.LatencyP99),
		Viewers:     []viewer{},
		Connections: d.conns.Stats(),
	}
	for _, s := range ws.Sessions {
		out.Viewers = append(out.Viewers, viewer{
			State: s.State, FirstFrameMs: ms(s.FirstFrame), Frames: s.Frames, Packets: s.Packets, Resent: s.Resent,
			NACKs: s.NACKs, PLIs: s.PLIs, Dropped: s.Dropped, EstimateBps: s.BitrateEstimate,
			ConnectedSecs: time.Since(s.Created).Seconds(),
		})
	}
	writeJSON(w, out)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
