package device

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/camd-project/camd/device/connlimit"
	"github.com/camd-project/camd/device/pairing"
	"github.com/camd-project/camd/media"
	"github.com/camd-project/camd/media/whep"
	"github.com/camd-project/camd/storage"
)

// Version is stamped at build time with -ldflags "-X .../device.Version=...".
var Version = "dev"

// Daemon is camd's core: it builds each component in dependency order and
// closes them in reverse.
type Daemon struct {
	cfg     Config
	log     *slog.Logger
	id      *Identity
	catalog *storage.Catalog
	pairing *pairing.Manager

	discovery discoveryState
	settings  settingsState
	board     boardState
	recording recordingState

	src  media.Source
	hub  *media.Hub
	whep *whep.Server
	tcp  net.Listener
	udp  net.PacketConn
	http *http.Server

	// conns is tcp within the connection caps; http serves it.
	conns *connlimit.Listener

	control     net.Listener
	controlHTTP *http.Server
	reset       chan struct{}

	closeOnce sync.Once
}

// New prepares the daemon: identity, listeners and source. Nothing runs
// until Run.
func New(cfg Config, log *slog.Logger) (*Daemon, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	d := &Daemon{cfg: cfg, log: log, reset: make(chan struct{}, 1)}
	if err := d.init(); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

func (d *Daemon) init() error {
	var err error
	if d.id, err = LoadIdentity(d.cfg.Data); err != nil {
		return err
	}
	if d.catalog, err = storage.OpenCatalog(filepath.Join(d.cfg.Data, "catalog.db"), storage.CatalogOptions{}); err != nil {
		return err
	}
	if d.catalog.Quarantined != "" {
		d.log.Warn("camd: catalog was damaged; moved aside and started a new one", "moved_to", d.catalog.Quarantined)
	}
	if d.pairing, err = pairing.Open(d.catalog, pairing.Options{DeviceID: d.id.ID, Fingerprint: d.id.FingerprintBytes(), Logger: d.log}); err != nil {
		return err
	}
	if d.control, err = d.listenControl(); err != nil {
		return err
	}
	if err = d.initSettings(); err != nil {
		return err
	}
	d.initDiscovery()
	if d.src, err = d.newLiveSource(); err != nil {
		return err
	}
	if d.tcp, d.udp, err = listen(d.cfg.Listen, d.cfg.Live.UDPPort); err != nil {
		return err
	}
	d.hub = media.NewHub(media.HubOptions{})
	host, _, _ := net.SplitHostPort(d.cfg.Listen)
	ip := net.ParseIP(host)
	d.whep, err = whep.NewServer(d.hub, whep.Options{
		Conn:            d.udp,
		Certificate:     &d.id.DTLS,
		MaxViewers:      d.cfg.Live.MaxViewers,
		ICETimeout:      d.cfg.Live.ICETimeout,
		MinBitrate:      d.cfg.Video.MinBitrate,
		MaxBitrate:      d.cfg.Video.MaxBitrate,
		StartBitrate:    d.cfg.Video.Bitrate,
		IncludeLoopback: host == "localhost" || (ip != nil && ip.IsLoopback()),
		Logger:          d.log,
	})
	if err != nil {
		return err
	}
	d.conns = connlimit.NewListener(d.tcp, connlimit.Options{
		Max: d.cfg.HTTP.MaxConnections, MaxPerAddress: d.cfg.HTTP.MaxConnectionsPerAddress, Logger: d.log,
	})
	d.http = newHTTPServer(d.cfg.HTTP, d.handler(), &tls.Config{Certificates: []tls.Certificate{d.id.TLS}, MinVersion: tls.VersionTLS12}, d.log)
	if err := d.initRecording(); err != nil {
		return err
	}
	return d.initBoard()
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

// listen binds the HTTPS port and the WebRTC UDP port (the same number
// unless udpPort is set). With port 0 the system picks one for both.
func listen(addr string, udpPort int) (net.Listener, net.PacketConn, error) {
	host, _, _ := net.SplitHostPort(addr)
	for attempt := 0; ; attempt++ {
		tcp, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("device: listen %s: %w", addr, err)
		}
		port := udpPort
		if port == 0 {
			port = tcp.Addr().(*net.TCPAddr).Port
		}
		udp, err := net.ListenPacket("udp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err == nil {
			return tcp, udp, nil
		}
		tcp.Close()
		_, p, _ := net.SplitHostPort(addr)
		if p != "0" || attempt > 10 {
			return nil, nil, fmt.Errorf("device: listen udp port %d: %w", port, err)
		}
	}
}

// Addr is the HTTPS address the daemon listens on.
func (d *Daemon) Addr() net.Addr { return d.tcp.Addr() }

// Identity is the device's identity.
func (d *Daemon) Identity() *Identity { return d.id }

// Run serves until ctx ends, then shuts down: it stops the source, lets
// requests in flight finish, closes every viewer's session and releases
// the ports.
func (d *Daemon) Run(ctx context.Context) error {
	srcCtx, stopSource := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		media.Supervise(srcCtx, d.src, d.hub, media.SuperviseOptions{Logger: d.log})
	}()
	go func() {
		defer wg.Done()
		d.whep.Run(srcCtx)
	}()
	d.startRecording(srcCtx)
	d.startBoard(srcCtx)

	served := make(chan error, 1)
	go func() { served <- d.http.ServeTLS(d.conns, "", "") }()
	d.controlHTTP = &http.Server{Handler: d.controlHandler(), ReadHeaderTimeout: 5 * time.Second}
	go d.controlHTTP.Serve(d.control)
	d.log.Info("camd: serving", "addr", "https://"+d.tcp.Addr().String()+"/", "udp", d.udp.LocalAddr().String(),
		"source", d.src.Info().Name, "device", d.id.ID, "tls_sha256", d.id.Fingerprint)
	d.startDiscovery()

	var err error
	select {
	case <-ctx.Done():
	case <-d.reset:
		err = ErrFactoryReset
	case err = <-served:
		err = fmt.Errorf("device: https: %w", err)
	}
	d.log.Info("camd: shutting down")
	d.stopDiscovery()
	shutCtx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if e := d.http.Shutdown(shutCtx); e != nil && !errors.Is(e, http.ErrServerClosed) {
		d.log.Warn("camd: https shutdown", "err", e)
	}
	d.controlHTTP.Shutdown(shutCtx)
	stopSource()
	d.Close()
	wg.Wait()
	d.log.Info("camd: stopped")
	return err
}

// Close releases everything New acquired. It is safe to call twice.
func (d *Daemon) Close() {
	d.closeOnce.Do(func() {
		d.closeRecording()
		if d.whep != nil {
			d.whep.Close()
		}
		if d.hub != nil {
			d.hub.Close()
		}
		if d.tcp != nil {
			d.tcp.Close()
		}
		if d.udp != nil {
			d.udp.Close()
		}
		if d.control != nil {
			d.control.Close()
		}
		if d.board.b != nil {
			d.closeBoard()
		}
		d.catalog.Close()
	})
}
