package api

import (
	"net/http"
	"slices"
	"strings"
)

// CORS headers: what a page on an allowed origin may send and read.
const (
	corsAllowHeaders  = "Authorization, Content-Type, If-Match, Range, Last-Event-ID"
	corsExposeHeaders = "Location, ETag, Link, Accept-Patch, Accept-Post, Accept-Ranges, Content-Range, Content-Length, Content-Disposition, Retry-After"
	corsMaxAge        = "600"
)

// cors lets pages on the allowed origins (a Home Assistant dashboard, a
// WHEP player on another host) call the viewer API from a browser: the
// Viewer and Stream routes, and OPTIONS on the WHEP endpoint. It answers their
// preflights itself (204, before any credential check: a preflight
// carries none) and marks their requests' answers readable. The request
// itself still needs its credential, and any other route (owner, pairing,
// the page) or origin gets no CORS header, so the browser keeps its
// answer from the page.
//
// origins is asked at each request (the owner's cors_allowed_origins
// setting changes at run time); nil allows none.
func cors(origins func() []string, mux *http.ServeMux, roles map[string]Role, h http.Handler) http.Handler {
	if origins == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		allowed := origins()
		if len(allowed) == 0 {
			h.ServeHTTP(w, r)
			return
		}
		hd := w.Header()
		hd.Add("Vary", "Origin")
		origin := r.Header.Get("Origin")
		if origin == "" || !slices.Contains(allowed, origin) {
			h.ServeHTTP(w, r)
			return
		}
		method := r.Method
		preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
		if preflight {
			method = r.Header.Get("Access-Control-Request-Method")
		}
		probe := r.Clone(r.Context())
		probe.Method = method
		_, pattern := mux.Handler(probe)
		role, ok := roles[pattern]
		if !ok || (role != Viewer && role != Stream && !strings.HasPrefix(pattern, http.MethodOptions+" ")) {
			h.ServeHTTP(w, r)
			return
		}
		hd.Set("Access-Control-Allow-Origin", origin)
		if !preflight {
			hd.Set("Access-Control-Expose-Headers", corsExposeHeaders)
			h.ServeHTTP(w, r)
			return
		}
		hd.Set("Access-Control-Allow-Methods", method)
		hd.Set("Access-Control-Allow-Headers", corsAllowHeaders)
		hd.Set("Access-Control-Max-Age", corsMaxAge)
		w.WriteHeader(http.StatusNoContent)
	})
}
