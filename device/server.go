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
	storage := &api.Storage{}
	if rs.card != nil {
		storage.Card = rs.card
	}
	recs := &api.Recordings{
		Stream: stream, Store: rs.store, Exports: exports{rs.store}, Recorder: rs.rec, Motion: rs.detector,
		Stills: rs.stills, Player: rs.playbacks, WHEP: d.whep,
	}
	return &api.API{
		Credentials: d.pairing,
		Logger:      d.log,
		Origins:     func() []string { return d.settings.Get().CORSAllowedOrigins.List() },
		Web:         &api.Web{Files: web, Version: Version},
		Pairing:     &api.Pairing{Exchange: d.pairing, Window: d.pairing, DeviceID: d.id.ID},
		Users:       &api.Users{Accounts: d.pairing, Invites: d.pairing, Keys: d.pairing, RTSPPort: rtspPort(d.rtsp), Settings: d.settings, DeviceID: d.id.ID},
		Live:        &api.Live{WHEP: d.whep, Viewers: d.whep, Sessions: d.whep, Stream: d.hub, Connections: d.conns, RTSP: rtspStatsOf(d.rtsp), Publish: d.whip},
		Recordings:  recs,
		Snapshots:   snaps,
		Events:      &api.Events{Log: eventsView{d.events.log, rs.snaps}, Bus: d.events.bus, Logger: d.log},
		Settings:    &api.Settings{Store: d.settings, Logger: d.log},
		Storage:     storage,
		Update:      &api.Update{Updater: d.updater},
		Push:        &api.Push{Sink: d.notify.push},
		Webhooks:    &api.Webhooks{Sink: d.notify.hooks},
		Network:     d.network.api(),
		Logs:        &api.Logs{Ring: d.ring},
		Crashes:     &api.Crashes{Reports: d.crashes},
		Metrics:     &api.Metrics{Scrape: d.newMetrics(), Tokens: d.metrics},
		Calls:       &api.Calls{Ringer: d.calls.m, Phones: d.calls.m, List: d.calls.m, Log: eventsView{d.events.log, rs.snaps}, Media: d.whep, Talk: d.calls},
		Discovered:  &api.Discovered{Finder: newLANFinder(d.cfg, d.id.ID, d.nvr.m, d.log)},
		Cameras:     &api.Cameras{List: d.nvr.m, Admin: d.nvr, Media: d.nvr, Recordings: recs, WHEP: d.whep},
	}
}

// tlsConfig is the HTTPS port's TLS: the device's certificate, TLS 1.2
// with AEAD suites only (forward secret, no CBC), and TLS 1.3.
func tlsConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		// TLS 1.2 suites for the device's ECDSA key; TLS 1.3's are all
		// AEAD and not configurable.
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
		},
	}
}

// newHTTPServer is the HTTPS server with the time limits of c
// (docs/security.md, "HTTP limits"); the connection caps are the
// listener's.
func newHTTPServer(c HTTPConfig, h http.Handler, tlsConf *tls.Config, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:   h,
		TLSConfig: tlsConf,
		// net/http gives the TLS handshake the smallest of the server's
		// timeouts: this one (unless ReadTimeout is set shorter).
		ReadHeaderTimeout: c.HandshakeTimeout,
		// Over HTTP/1.1 the connection's read deadline, lifted once the
		// body has been read; over HTTP/2 a timer per stream that ends
		// only its body. Neither cuts a long answer (tested).
		ReadTimeout: c.ReadTimeout,
		IdleTimeout: 2 * time.Minute,
		// Each HTTP/2 stream runs a handler: bound them per connection,
		// so that the connection caps bound the handlers too.
		HTTP2:    &http.HTTP2Config{MaxConcurrentStreams: maxStreams},
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}

// maxStreams is the most concurrent HTTP/2 streams of one connection (a
// browser queues more).
const maxStreams = 16
