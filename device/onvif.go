package device

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/camd-project/camd/device/api"
	"github.com/camd-project/camd/device/connlimit"
	"github.com/camd-project/camd/device/events"
	"github.com/camd-project/camd/device/onvif"
	"github.com/camd-project/camd/device/pairing"
	"github.com/camd-project/camd/device/settings"
	"github.com/camd-project/camd/discovery"
	"github.com/camd-project/camd/media"
	"github.com/camd-project/camd/media/h264"
)

// ONVIF connection caps: as RTSP's, every ONVIF client is a viewer.
const (
	onvifMaxConnections           = 64
	onvifMaxConnectionsPerAddress = 16
)

// onvifService is the ONVIF service (docs/onvif.md) on its plain HTTP
// listener.
type onvifService struct {
	srv  *onvif.Server
	ln   net.Listener
	http *http.Server
}

// onvifDeps are what the ONVIF service answers from.
type onvifDeps struct {
	keys      *pairing.Manager
	hub       *media.Hub
	bus       *events.Bus
	settings  func() settings.Settings
	rtspPort  int
	httpsPort int
	scopes    func() []string
	deviceID  string
	log       *slog.Logger
}

// listenONVIF binds the ONVIF port of cfg (nil when onvif.listen is
// off) within the connection caps.
func listenONVIF(cfg Config, log *slog.Logger) (net.Listener, error) {
	if cfg.ONVIF.Listen == "" {
		return nil, nil
	}
	l, err := net.Listen("tcp", cfg.ONVIF.Listen)
	if err != nil {
		return nil, fmt.Errorf("device: onvif listen %s: %w", cfg.ONVIF.Listen, err)
	}
	return connlimit.NewListener(l, connlimit.Options{Max: onvifMaxConnections, MaxPerAddress: onvifMaxConnectionsPerAddress, Logger: log}), nil
}

// newONVIF builds the ONVIF service on ln (nil: off, and so is the
// service).
func newONVIF(cfg Config, ln net.Listener, d onvifDeps) (*onvifService, error) {
	if ln == nil {
		return nil, nil
	}
	snapshots := cfg.Source != "passthrough" || len(cfg.Passthrough.SnapshotCommand) > 0
	srv, err := onvif.New(onvif.Options{
		Device: onvif.Device{Manufacturer: "camd", Model: discoveryModel, Firmware: Version, Serial: d.deviceID},
		Verify: func(user string, proof func(secret string) bool) (string, error) {
			u, err := d.keys.VerifyKey(user, proof)
			return u.ID, err
		},
		RTSPPort: d.rtspPort, RTSPPath: api.RTSPPath,
		SnapshotURL: func(host string) string {
			if !snapshots {
				return ""
			}
			return "https://" + net.JoinHostPort(host, strconv.Itoa(d.httpsPort)) + "/api/v1/snapshot.jpg"
		},
		Video:      func() onvif.Video { return streamVideo(d.settings(), d.hub.LastKeyframe()) },
		Keyframe:   d.hub.AskKeyframe,
		Name:       func() string { return d.settings().Name },
		Scopes:     d.scopes,
		Interfaces: onvifInterfaces,
		Subscribe: func(user string, kinds []string) (onvif.Subscription, error) {
			// A viewer's subscription from now on: the session guard ends
			// it with the key (events.Bus.EndUser).
			return d.bus.Subscribe(nil, events.Subscriber{User: user, Kinds: kinds})
		},
		Logger: d.log,
	})
	if err != nil {
		ln.Close()
		return nil, err
	}
	return &onvifService{srv: srv, ln: ln, http: &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       20 * time.Second,
		// A PullMessages waits up to a minute for an event.
		WriteTimeout: 90 * time.Second,
		IdleTimeout:  2 * time.Minute,
		ErrorLog:     slog.NewLogLogger(d.log.Handler(), slog.LevelDebug),
	}}, nil
}

// serve answers until close.
func (o *onvifService) serve() error {
	if err := o.http.Serve(o.ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// portOf is a listener's port, 0 for none.
func portOf(l net.Listener) int {
	if l == nil {
		return 0
	}
	return l.Addr().(*net.TCPAddr).Port
}

// close ends the subscriptions (their PullMessages return) and the
// listener. It is safe to call twice.
func (o *onvifService) close() {
	if o == nil {
		return
	}
	o.srv.Close()
	o.http.Close()
}

// streamVideo is the stream as the settings describe it, corrected by
// the SPS of the newest keyframe when there is one: a passthrough
// stream's size and profile are the hardware encoder's, not the
// settings'.
func streamVideo(s settings.Settings, key *media.Frame) onvif.Video {
	w, h := s.Size()
	v := onvif.Video{Width: w, Height: h, FPS: s.FPS, Bitrate: s.Bitrate, Profile: "Baseline"}
	if key == nil {
		return v
	}
	for _, n := range h264.NALUs(key.Data) {
		if len(n) == 0 || n[0]&0x1f != 7 {
			continue
		}
		if info, err := h264.ParseSPS(n); err == nil {
			v.Width, v.Height = info.Width, info.Height
			if info.FPS > 0 {
				v.FPS = int(info.FPS + 0.5)
			}
			switch info.Profile {
			case 66:
				v.Profile = "Baseline"
			case 77:
				v.Profile = "Main"
			case 88:
				v.Profile = "Extended"
			default:
				v.Profile = "High"
			}
		}
		break
	}
	return v
}

// onvifInterfaces are the interfaces that are up, not loopback, with
// their IPv4 addresses.
func onvifInterfaces() []onvif.Interface {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil
	}
	var out []onvif.Interface
	for _, in := range ifs {
		if in.Flags&net.FlagUp == 0 || in.Flags&net.FlagLoopback != 0 {
			continue
		}
		o := onvif.Interface{Name: in.Name, Index: in.Index}
		addrs, _ := in.Addrs()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
				o.IPv4 = append(o.IPv4, net.IPNet{IP: n.IP.To4(), Mask: n.Mask[len(n.Mask)-4:]})
			}
		}
		out = append(out, o)
	}
	return out
}

// announcedScopes are the ONVIF scopes discovery announces, or those it
// would under name before it runs.
func (n *announcer) announcedScopes(name func() string) func() []string {
	return func() []string {
		if a := n.running.Load(); a != nil {
			return a.Scopes()
		}
		return discovery.ONVIFScopes(name(), discoveryModel, true)
	}
}
