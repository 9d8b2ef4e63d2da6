package api

import (
	"io/fs"
	"net/http"
)

// Web serves the web page (the owner's app: docs/app.md) and the health
// check.
type Web struct {
	// Files are the app's files: WebFiles, each at the root.
	Files   fs.FS
	Version string
}

// WebFiles are the app's files besides the page itself (GET /): its
// scripts, style, web manifest, icons and service worker. Each is public:
// a phone loads the app before it is paired. The service worker (sw.js)
// caches these and the page, never an API answer or media.
var WebFiles = []string{
	"app.js", "app.css", "recordings.js", "call.js",
	"shell.js", "events.js", "settings.js", "users.js",
	"keys.js", "snapshots.js", "device.js", "pairing.js",
	"sw.js", "manifest.json", "icon-192.png", "icon-512.png",
	"live.js", "text.js",
}

func (a *Web) routes() []Route {
	static := http.FileServerFS(a.Files).ServeHTTP
	routes := []Route{
		{"GET /health", Public, a.handleHealth},
		{"GET /{$}", Public, static},
	}
	for _, f := range WebFiles {
		routes = append(routes, Route{"GET /" + f, Public, static})
	}
	return routes
}

func (a *Web) handleHealth(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, map[string]any{"status": "ok", "version": a.Version})
}
