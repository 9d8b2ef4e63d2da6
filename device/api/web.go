package api

import (
	"io/fs"
	"net/http"
)

// Web serves the web page and the health check.
type Web struct {
	// Files are the web page's files: index.html, app.js, app.css,
	// recordings.js and call.js.
	Files   fs.FS
	Version string
}

func (a *Web) routes() []Route {
	static := http.FileServerFS(a.Files).ServeHTTP
	return []Route{
		{"GET /health", Public, a.handleHealth},
		{"GET /{$}", Public, static},
		{"GET /app.js", Public, static},
		{"GET /app.css", Public, static},
		{"GET /recordings.js", Public, static},
		{"GET /call.js", Public, static},
	}
}

func (a *Web) handleHealth(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, map[string]any{"status": "ok", "version": a.Version})
}
