package device

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/camd-project/camd/board"
	"github.com/camd-project/camd/device/api"
	"github.com/camd-project/camd/device/connlimit"
	"github.com/camd-project/camd/device/crash"
	"github.com/camd-project/camd/device/metrics"
	"github.com/camd-project/camd/device/onvif"
	"github.com/camd-project/camd/device/pairing"
	"github.com/camd-project/camd/device/settings"
	"github.com/camd-project/camd/internal/logring"
	"github.com/camd-project/camd/media"
	"github.com/camd-project/camd/media/rtsp"
	"github.com/camd-project/camd/media/snapshot"
	"github.com/camd-project/camd/media/whep"
	"github.com/camd-project/camd/storage"
	"github.com/camd-project/camd/update"
)

// Version is stamped at build time with -ldflags "-X .../device.Version=...".
var Version = "dev"

// Daemon is camd's core: it builds each component in dependency order
// (init) and closes them in reverse (Close).
type Daemon struct {
	cfg     Config
	log     *slog.Logger
	id      *Identity
	catalog *storage.Catalog
	events  *eventState
	pairing *pairing.Manager
	control net.Listener

	tcp       net.Listener
	udp       net.PacketConn
	hub       *media.Hub
	whep      *whep.Server
	rtsp      *rtsp.Server // nil: rtsp.listen is off
	whip      *whipState
	onvif     *onvifService // nil: onvif.listen is off
	recording *recordingState
	nvr       *nvrState
	board     *boardState
	calls     *callState
	mic       *micChain
	discovery *announcer
	sessions  *sessionGuard
	settings  *settingsState
	updater   *update.Updater
	network   *networkState
	storage   *storageWatch
	mqtt      *mqttState // nil: MQTT is off
	notify    *notifyState
	ring      *logring.Ring
	crashes   *crash.Reports
	metrics   *metrics.Tokens

	api  *api.API
	http *http.Server
	// conns is tcp within the connection caps; http serves it.
	conns       *connlimit.Listener
	controlHTTP *http.Server
	reset       resetSignal

	closeOnce sync.Once
}

// New prepares the daemon: identity, listeners and source. Nothing runs
// until Run.
func New(cfg Config, log *slog.Logger) (*Daemon, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	d := &Daemon{cfg: cfg, log: log, reset: make(resetSignal, 1)}
	if err := d.init(); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// init builds every component, each from the ones built before it; Close
// closes them in reverse. No component is changed once built.
func (d *Daemon) init() error {
	err := finishReset(d.cfg, d.log)
	if err != nil {
		return err
	}
	var logBefore uint64 // the last line of the runs before
	if d.ring, d.log, logBefore, err = openLog(d.cfg, d.log); err != nil {
		return err
	}
	if d.id, err = LoadIdentity(d.cfg.Data); err != nil {
		return err
	}
	if d.catalog, err = storage.OpenCatalog(filepath.Join(d.cfg.Data, catalogFile), storage.CatalogOptions{}); err != nil {
		return err
	}
	if d.catalog.Quarantined != "" {
		d.log.Warn("camd: catalog was damaged; moved aside and started a new one", "moved_to", d.catalog.Quarantined)
	}
	d.events = openEvents(d.catalog, d.id.ID, d.log)
	if d.pairing, err = pairing.Open(d.catalog, pairing.Options{DeviceID: d.id.ID, Fingerprint: d.id.FingerprintBytes(), StreamKeyRoot: d.id.StreamKeyRoot, Notify: d.events.userChanged, Logger: d.log}); err != nil {
		return err
	}
	if d.control, err = listenControl(d.cfg.Data); err != nil {
		return err
	}

	// The owner's settings shape the configuration the rest is built
	// from, and the source.
	store, err := openSettings(d.catalog, d.cfg, d.log)
	if err != nil {
		return err
	}
	d.mic = newMicChain(d.cfg, d.log)
	build := sourceBuilder(d.cfg, d.mic.fn(d.cfg), d.log)
	d.cfg = withSettings(d.cfg, store.Get())
	live, err := buildLiveSource(build, store.Get())
	if err != nil {
		return err
	}

	if d.tcp, d.udp, err = listen(d.cfg.Listen, d.cfg.Live.UDPPort); err != nil {
		return err
	}
	d.hub = media.NewHub(media.HubOptions{})
	host, _, _ := net.SplitHostPort(d.cfg.Listen)
	ip := net.ParseIP(host)
	d.whep, err = whep.NewServer(d.hub, whep.Options{
		Conn:              d.udp,
		Certificate:       &d.id.DTLS,
		MaxViewers:        d.cfg.Live.MaxViewers,
		MaxViewersPerUser: d.cfg.Live.MaxViewersPerUser,
		User: func(r *http.Request) (string, bool) {
			u := api.UserFrom(r.Context())
			return u.ID, u.Role == pairing.Owner
		},
		ICETimeout:      d.cfg.Live.ICETimeout,
		MinBitrate:      d.cfg.Video.MinBitrate,
		MaxBitrate:      d.cfg.Video.MaxBitrate,
		StartBitrate:    d.cfg.Video.Bitrate,
		IncludeLoopback: host == "localhost" || (ip != nil && ip.IsLoopback()),
		ICEServers:      iceServers(d.cfg.Live.ICEServers),
		ReplayBitrate:   d.cfg.Live.ReplayBitrate,
		Logger:          d.log,
	})
	if err != nil {
		return err
	}
	if d.rtsp, err = newRTSP(d.cfg.RTSP, d.hub, d.pairing, d.log); err != nil {
		return err
	}
	d.whip = newWHIP(d.hub, d.whep, &d.id.DTLS, store.Get(), d.events, d.log)
	if d.recording, err = openRecording(d.cfg, d.catalog, d.events.log, d.hub, live, store.Get(), d.log); err != nil {
		return err
	}
	if d.nvr, err = openNVR(d.cfg, d.catalog, d.recording, d.events.log, d.log); err != nil {
		return err
	}
	var grab *snapshot.Grabber
	if d.cfg.Source != "passthrough" {
		grab = d.recording.grab
	}
	if d.network, err = openNetwork(d.cfg, d.pairing, grab, d.events, d.log); err != nil {
		return err
	}
	// The board is opened next (its doorbell rings): a call is answered
	// only once it runs.
	speaker := func() board.Speaker { return d.board.b.Speaker }
	volume := func() float64 { return float64(store.Get().SpeakerVolume) / 100 }
	ringing := func(on bool) { d.board.ringing(on) }
	d.calls = openCalls(d.cfg.Calls, d.events, d.pairing, d.recording, d.whep, speaker, volume, ringing, d.log)
	d.calls.mic = d.mic
	d.board, err = openBoard(d.cfg.Board, boardOptions{
		events:   boardEventsFor(d.pairing, d.recording, d.calls, d.reset, d.network, d.log),
		settings: store.Get(), live: live, pairing: d.pairing, recording: d.recording,
		watchdog: d.cfg.Watchdog, volume: volume, echo: simEcho(d.cfg), speakerFile: d.cfg.Sim.SpeakerFile, log: d.log,
	})
	if err != nil {
		return err
	}
	if d.board.sim != nil && simEcho(d.cfg) != nil {
		d.mic.room.Store(d.board.sim.Speaker)
	}
	d.mic.useSpeaker(d.board.b.Speaker)
	onvifLn, err := listenONVIF(d.cfg, d.log)
	if err != nil {
		return err
	}
	d.discovery = newAnnouncer(d.cfg, d.tcp.Addr().(*net.TCPAddr).Port, portOf(onvifLn), d.id.ID, d.pairing, d.log)
	if d.onvif, err = newONVIF(d.cfg, onvifLn, onvifDeps{
		keys: d.pairing, hub: d.hub, bus: d.events.bus, settings: store.Get,
		rtspPort: rtspPort(d.rtsp), httpsPort: d.tcp.Addr().(*net.TCPAddr).Port,
		scopes:   d.discovery.announcedScopes(func() string { return store.Get().Name }),
		deviceID: d.id.ID, log: d.log,
	}); err != nil {
		return err
	}
	if d.crashes, err = openCrashes(d.cfg, d.ring, logBefore, d.recording.events, d.log); err != nil {
		return err
	}
	if d.metrics, err = metrics.OpenTokens(d.cfg.Data); err != nil {
		return err
	}
	d.sessions = newSessionGuard(d.pairing, d.whep, d.rtsp, d.events.bus, d.log,
		sessionHolder{what: "calls", end: d.calls.m.EndUser, held: d.calls.held(d.pairing)})
	d.storage = &storageWatch{stats: d.recording.store.Stats, events: d.events, every: storageCheck}
	d.pairing.OnChange(d.board.refreshStatus)
	d.pairing.OnChange(d.discovery.refresh)
	d.pairing.OnChange(d.sessions.changed)
	health := newHealthCheck(d.hub, d.tcp.Addr(), d.id.TLS)
	if d.cfg.Source == "none" {
		health.hub = nil // no lens, no frames of its own
	}
	if d.updater, err = openUpdater(d.cfg, d.recording.events, health, store.Get(), d.log); err != nil {
		return err
	}
	if d.notify, err = openNotify(d.cfg, d.catalog, d.events, d.pairing, d.log); err != nil {
		return err
	}
	d.settings = &settingsState{
		store: store, live: live, build: build,
		fixedVideo: d.cfg.Source == "passthrough",
		listeners: []func(before, after settings.Settings){
			d.recording.settingsChanged, d.board.settingsChanged, d.discovery.settingsChanged, updateSettingChanged(d.updater),
			crashSettingChanged(d.crashes),
			d.whip.settingsChanged,
		},
		events: d.events,
		log:    d.log,
	}
	if d.mqtt, err = openMQTT(d.cfg, d.id.ID, d.catalog, d.events, d.settings, d.recording, d.log); err != nil {
		return err
	}

	d.conns = connlimit.NewListener(d.tcp, connlimit.Options{
		Max: d.cfg.HTTP.MaxConnections, MaxPerAddress: d.cfg.HTTP.MaxConnectionsPerAddress, Logger: d.log,
	})
	d.api = d.newAPI()
	d.http = newHTTPServer(d.cfg.HTTP, d.api.Handler(), tlsConfig(d.id.TLS), d.log)
	// Event streams never end by themselves: Shutdown ends them first.
	d.http.RegisterOnShutdown(d.events.bus.Close)
	d.http.RegisterOnShutdown(d.api.Snapshots.CloseStreams)
	d.controlHTTP = &http.Server{Handler: controlHandler(d.pairing, d.hostHintFor(), d.reset, d.log), ReadHeaderTimeout: 5 * time.Second}
	return nil
}

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

// Settings returns the settings in force.
func (d *Daemon) Settings() settings.Settings { return d.settings.Get() }

// Run serves until ctx ends, then shuts down: it stops the source, lets
// requests in flight finish, closes every viewer's session and releases
// the ports. After a factory reset request it also erases the device,
// once every file is closed, and returns ErrFactoryReset.
func (d *Daemon) Run(ctx context.Context) error {
	runCtx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { media.Supervise(runCtx, d.settings.live, d.hub, media.SuperviseOptions{Logger: d.log}) })
	wg.Go(func() { d.whep.Run(runCtx) })
	wg.Go(func() { d.whip.run(runCtx) })
	wg.Go(func() { d.sessions.run(runCtx) })
	wg.Go(func() { d.updater.Run(runCtx) })
	wg.Go(func() { d.storage.run(runCtx) })
	if d.mqtt != nil {
		wg.Go(func() { d.mqtt.run(runCtx) })
	}
	wg.Go(func() { d.crashes.Run(runCtx, 0) })
	if err := d.crashes.Arm(time.Now()); err != nil {
		d.log.Warn("camd: a crash will leave no report", "err", err)
	}
	d.recording.start(runCtx)
	d.nvr.start(runCtx)
	d.board.start(runCtx)
	d.notify.start(runCtx)
	d.network.start(runCtx, d.log)

	served := make(chan error, 1)
	wg.Go(func() { served <- d.http.ServeTLS(d.conns, "", "") })
	wg.Go(func() { d.controlHTTP.Serve(d.control) })
	d.log.Info("camd: serving", "addr", "https://"+d.tcp.Addr().String()+"/", "udp", d.udp.LocalAddr().String(),
		"source", d.settings.live.Info().Name, "device", d.id.ID, "tls_sha256", d.id.Fingerprint)
	if d.rtsp != nil {
		d.log.Info("camd: rtsp serving", "url", "rtsp://"+d.rtsp.Addr().String()+api.RTSPPath)
	}
	if d.onvif != nil {
		wg.Go(func() {
			if err := d.onvif.serve(); err != nil {
				d.log.Warn("camd: onvif stopped", "err", err)
			}
		})
		d.log.Info("camd: onvif serving", "url", "http://"+d.onvif.ln.Addr().String()+onvif.DevicePath)
	}
	d.discovery.start(d.settings.Get().Name)

	var err error
	select {
	case <-ctx.Done():
	case <-d.reset:
		err = ErrFactoryReset
		// The Wi-Fi passphrase is the owner's too, kept by
		// wpa_supplicant outside the data directory.
		d.network.forget(d.log)
	case err = <-served:
		err = fmt.Errorf("device: https: %w", err)
	}
	d.log.Info("camd: shutting down")
	if errors.Is(err, ErrFactoryReset) {
		d.mqtt.forget() // as it stops: the device leaves Home Assistant
	}
	d.discovery.stop()
	shutCtx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if e := d.http.Shutdown(shutCtx); e != nil && !errors.Is(e, http.ErrServerClosed) {
		d.log.Warn("camd: https shutdown", "err", e)
	}
	d.controlHTTP.Shutdown(shutCtx)
	if d.calls != nil {
		// Before the goroutines stop: a call ringing now is missed,
		// and its event is written by the recording's task goroutine.
		d.calls.m.Close()
	}
	stop()
	d.Close()
	wg.Wait()
	d.crashes.Disarm()
	if errors.Is(err, ErrFactoryReset) {
		if e := FactoryReset(d.cfg, d.log); e != nil {
			err = e
		}
	}
	d.log.Info("camd: stopped")
	return err
}

// Close releases everything New acquired, in the reverse order of init.
// It is safe to call twice.
func (d *Daemon) Close() {
	d.closeOnce.Do(func() {
		if d.discovery != nil {
			d.discovery.stop()
		}
		if d.board != nil {
			d.board.close()
		}
		if d.network != nil {
			d.network.close() // after the board, whose button enters setup mode
		}
		if d.calls != nil {
			d.calls.m.Close()
		}
		if d.nvr != nil {
			d.nvr.close() // its recorders write to the recording store
		}
		if d.recording != nil {
			d.recording.close()
		}
		if d.events != nil {
			d.events.bus.Close()
		}
		if d.notify != nil {
			d.notify.close()
		}
		if d.whep != nil {
			d.whep.Close()
		}
		if d.rtsp != nil {
			d.rtsp.Close()
		}
		d.onvif.close()
		if d.hub != nil {
			d.hub.Close()
		}
		if d.udp != nil {
			d.udp.Close()
		}
		if d.conns != nil {
			d.conns.Close() // and tcp under it, logging refusals not logged yet
		} else if d.tcp != nil {
			d.tcp.Close()
		}
		if d.control != nil {
			d.control.Close()
		}
		d.catalog.Close()
		if d.ring != nil {
			d.ring.Close()
		}
	})
}

// iceServers converts the configured ICE servers for the WHEP server.
func iceServers(cs []ICEServerConfig) []webrtc.ICEServer {
	var out []webrtc.ICEServer
	for _, c := range cs {
		s := webrtc.ICEServer{URLs: c.URLs, Username: c.Username}
		if c.Credential != "" {
			s.Credential = c.Credential
		}
		out = append(out, s)
	}
	return out
}
