package api

import (
	"errors"
	"net/http"
	"runtime"
	"time"

	"github.com/camd-project/camd/device/connlimit"
	"github.com/camd-project/camd/media"
	"github.com/camd-project/camd/media/rtsp"
	"github.com/camd-project/camd/media/whep"
)

// Live is live view: WHEP signalling, the stream's statistics, and the
// owner's view of every session.
type Live struct {
	WHEP     whepSignalling // *whep.Server
	Viewers  viewerStats    // *whep.Server
	Sessions sessionEnder   // *whep.Server
	Stream   streamStats    // *media.Hub
	// Connections counts the HTTPS connections (*connlimit.Listener);
	// nil leaves them out.
	Connections connectionStats
	// RTSP lists the RTSP sessions (*rtsp.Server); nil: RTSP is off.
	RTSP rtspStats
	// Publish is the WHIP publish to the owner's SFU; nil answers "off".
	Publish whipPublish
}

// whipPublish tells what the WHIP publish is doing.
type whipPublish interface{ Status() WHIPStatus }

// WHIPStatus is the publish of the live stream to the owner's SFU
// (GET /api/v1/whip, docs/whip.md). It never holds the token, nor the
// endpoint's path (a cloud SFU's may hold a stream key): the owner reads
// the URL from the settings.
type WHIPStatus struct {
	// State is off, connecting, publishing, retrying, refused (the SFU
	// refused the token: no attempt until the settings change) or
	// stopped.
	State string `json:"state"`
	// Endpoint is the URL's scheme and host.
	Endpoint string    `json:"endpoint,omitempty"`
	Since    time.Time `json:"since,omitzero"`
	// Error is the last failure; Failures counts those in a row.
	Error       string     `json:"error,omitempty"`
	Failures    int        `json:"failures"`
	NextAttempt *time.Time `json:"next_attempt,omitempty"`
	Connected   *time.Time `json:"connected,omitempty"`
	// Counters over every connection since the settings last changed.
	Frames  uint64 `json:"frames"`
	Packets uint64 `json:"packets"`
	Resent  uint64 `json:"resent"`
	PLIs    uint64 `json:"plis"`
	NACKs   uint64 `json:"nacks"`
}

// rtspStats lists the RTSP server's sessions, and ends one
// (rtsp.ErrNoSession: there is none).
type rtspStats interface {
	Stats() rtsp.Stats
	EndSession(id string) error
}

// connectionStats counts the HTTPS connections and those refused.
type connectionStats interface{ Stats() connlimit.Stats }

// sessionEnder ends any user's session (whep.ErrNoSession: there is none).
type sessionEnder interface{ EndSession(id string) error }

// whepSignalling answers WHEP (draft-ietf-wish-whep) requests for the
// live stream.
type whepSignalling interface {
	HandleOptions(w http.ResponseWriter, r *http.Request)
	HandleOffer(w http.ResponseWriter, r *http.Request)
	HandlePatch(w http.ResponseWriter, r *http.Request)
	HandleDelete(w http.ResponseWriter, r *http.Request)
}

// viewerStats counts the viewers' sessions.
type viewerStats interface{ Stats() whep.Stats }

// streamStats counts the live stream's frames.
type streamStats interface{ Stats() media.Stats }

func (a *Live) routes() []Route {
	return []Route{
		// OPTIONS answers anyone (MediaMTX asks before its offer); the
		// ICE servers only a paired user.
		{"OPTIONS /api/v1/whep", Public, a.WHEP.HandleOptions},
		{"POST /api/v1/whep", Stream, a.WHEP.HandleOffer},
		{"PATCH /api/v1/whep/{id}", Stream, a.WHEP.HandlePatch},
		{"DELETE /api/v1/whep/{id}", Stream, a.WHEP.HandleDelete},
		{"GET /api/v1/stats", Viewer, a.handleStats},
		{"GET /api/v1/sessions", Owner, a.handleSessions},
		{"DELETE /api/v1/sessions/{id}", Owner, a.handleEndSession},
		{"GET /api/v1/whip", Owner, a.handleWHIP},
	}
}

// handleWHIP tells the owner what the publish to their SFU is doing.
func (a *Live) handleWHIP(w http.ResponseWriter, _ *http.Request) {
	if a.Publish == nil {
		writeJSON(w, WHIPStatus{State: "off"})
		return
	}
	writeJSON(w, a.Publish.Status())
}

// Session is one live or playback session in the owner's list.
type Session struct {
	ID       string `json:"id"`
	User     string `json:"user_id"`
	Owner    bool   `json:"owner"`
	Playback bool   `json:"playback"`
	// RTSP marks a session of the RTSP server (a stream key's).
	RTSP    bool      `json:"rtsp,omitempty"`
	State   string    `json:"state"`
	Created time.Time `json:"created"`
	Frames  uint64    `json:"frames"`
}

// handleSessions lists every session and who holds it, for an owner: a
// viewer sees only the counts (GET /api/v1/stats).
func (a *Live) handleSessions(w http.ResponseWriter, _ *http.Request) {
	list := []Session{}
	for _, s := range a.Viewers.Stats().Sessions {
		list = append(list, Session{ID: s.ID, User: s.User, Owner: s.Owner, Playback: s.Playback,
			State: s.State, Created: s.Created, Frames: s.Frames})
	}
	if a.RTSP != nil {
		for _, s := range a.RTSP.Stats().Sessions {
			list = append(list, Session{ID: s.ID, User: s.User, RTSP: true, State: s.State, Created: s.Created, Frames: s.Frames})
		}
	}
	writeJSON(w, list)
}

// handleEndSession ends anyone's session: an owner's way to stop a
// viewer (a viewer ends only its own, with DELETE on its session URL).
func (a *Live) handleEndSession(w http.ResponseWriter, r *http.Request) {
	err := a.Sessions.EndSession(r.PathValue("id"))
	if errors.Is(err, whep.ErrNoSession) && a.RTSP != nil {
		err = a.RTSP.EndSession(r.PathValue("id"))
	}
	if err != nil {
		code := http.StatusInternalServerError
		if errors.Is(err, whep.ErrNoSession) || errors.Is(err, rtsp.ErrNoSession) {
			code = http.StatusNotFound
		}
		jsonError(w, code, err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// handleStats reports the stream and the viewers.
func (a *Live) handleStats(w http.ResponseWriter, _ *http.Request) {
	hs := a.Stream.Stats()
	ws := a.Viewers.Stats()
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
		Connections *connlimit.Stats `json:"connections,omitempty"`
		// RTSP is the RTSP sessions, when the server is on.
		RTSP []rtspSession `json:"rtsp_sessions,omitempty"`
	}{
		Goroutines: runtime.NumGoroutine(),
		Source:     hs.Source, Published: hs.Published, ForcedKeys: hs.ForcedKeys, TargetBitrate: hs.TargetBitrate,
		Served: ws.Served, Refused: ws.Refused,
		LatencyP50Ms: ms(ws.LatencyP50), LatencyP99Ms: ms(ws.LatencyP99),
		Viewers: []viewer{},
	}
	if a.Connections != nil {
		cs := a.Connections.Stats()
		out.Connections = &cs
	}
	if a.RTSP != nil {
		out.RTSP = []rtspSession{}
		for _, s := range a.RTSP.Stats().Sessions {
			out.RTSP = append(out.RTSP, rtspSession{State: s.State, Transport: s.Transport, FirstFrameMs: ms(s.FirstFrame),
				Frames: s.Frames, Dropped: s.Dropped, ConnectedSecs: time.Since(s.Created).Seconds()})
		}
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

// rtspSession is an RTSP session in GET /api/v1/stats.
type rtspSession struct {
	State         string  `json:"state"`
	Transport     string  `json:"transport"`
	FirstFrameMs  float64 `json:"first_frame_ms"`
	Frames        uint64  `json:"frames"`
	Dropped       uint64  `json:"dropped"`
	ConnectedSecs float64 `json:"age_s"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
