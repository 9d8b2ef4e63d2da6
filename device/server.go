package device

import (
	"crypto/tls"
	"embed"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/camd-project/camd/device/api"
)

//go:embed web
var webFiles embed.FS

// newAPI builds each feature's handlers of the HTTPS API from the
// components they use (docs/api.md lists the routes).
func (d *Daemon) newAPI() *api.API {
	web, _ := fs.Sub(webFiles, "web")
	rs := d.recording
	snaps := &api.Snapshots{Stills: rs.stills, Saver: rs.snaps, Library: rs.snaps, Logger: d.log}
	return &api.API{
		Credentials: d.pairing,
		Logger:      d.log,
		Web:         &api.Web{Files: web, Version: Version},
		Pairing:     &api.Pairing{Exchange: d.pairing, Window: d.pairing, DeviceID: d.id.ID},
		Users:       &api.Users{Accounts: d.pairing, Invites: d.pairing, Settings: d.settings, DeviceID: d.id.ID},
		Live:        &api.Live{WHEP: d.whep, Viewers: d.whep, Sessions: d.whep, Stream: d.hub},
		Recordings: &api.Recordings{
			Stream: stream, Store: rs.store, Exports: exports{rs.store}, Recorder: rs.rec, Motion: rs.detector,
			Stills: rs.stills, Player: rs.playbacks, WHEP: d.whep,
		},
		Snapshots: snaps,
		Events:    &api.Events{Log: eventsView{rs.events, rs.snaps}},
		Settings:  &api.Settings{Store: d.settings, Logger: d.log},
	}
}

// newHTTPS is the HTTPS server of the API, with the device's certificate.
func newHTTPS(h http.Handler, cert tls.Certificate, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}
