package device

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"aead.dev/minisign"
	"gopkg.in/yaml.v3"

	"github.com/camd-project/camd/board"
	"github.com/camd-project/camd/device/connlimit"
	"github.com/camd-project/camd/device/settings"
	"github.com/camd-project/camd/internal/fielderr"
	"github.com/camd-project/camd/internal/logring"
	"github.com/camd-project/camd/network"
)

// Config is camd's configuration. Its zero value is not valid; start from
// Defaults and apply a file (LoadConfig) and flags on top.
type Config struct {
	// Listen is the HTTPS address; WebRTC media uses UDP on the same port
	// unless Live.UDPPort is set.
	Listen string `yaml:"listen"`
	// Data is the directory for identity, settings and recordings.
	Data string `yaml:"data"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `yaml:"log_level"`
	// Name is the camera's friendly name.
	Name string `yaml:"name"`
	// Source is synthetic, passthrough, capture, or none: an NVR with no
	// lens, which records the cameras it adds (docs/nvr.md).
	Source      string            `yaml:"source"`
	Video       VideoConfig       `yaml:"video"`
	Audio       AudioConfig       `yaml:"audio"`
	Passthrough PassthroughConfig `yaml:"passthrough"`
	Capture     CaptureConfig     `yaml:"capture"`
	Live        LiveConfig        `yaml:"live"`
	HTTP        HTTPConfig        `yaml:"http"`
	RTSP        RTSPConfig        `yaml:"rtsp"`
	ONVIF       ONVIFConfig       `yaml:"onvif"`
	NVR         NVRConfig         `yaml:"nvr"`
	CORS        CORSConfig        `yaml:"cors"`
	Discovery   DiscoveryConfig   `yaml:"discovery"`
	Recording   RecordingConfig   `yaml:"recording"`
	Update      UpdateConfig      `yaml:"update"`
	MQTT        MQTTConfig        `yaml:"mqtt"`
	Push        PushConfig        `yaml:"push"`
	Network     NetworkConfig     `yaml:"network"`
	Log         LogConfig         `yaml:"log"`
	// CrashReports is what happens to the report of a crash
	// (docs/observability.md): never (only a line in the log), ask (kept
	// for the owner, who sends or deletes it) or send (uploaded to
	// CrashReportsURL).
	CrashReports string `yaml:"crash_reports"`
	// CrashReportsURL is the https collector reports are sent to.
	CrashReportsURL string `yaml:"crash_reports_url"`
	// CrashReportsCAFile holds PEM certificates to trust for the
	// collector beside the system's; "" for the system's only.
	CrashReportsCAFile string      `yaml:"crash_reports_ca_file"`
	Calls              CallsConfig `yaml:"calls"`
	// Board is the hardware: sim (the simulated board), a built-in
	// profile (rpi, gpiochip) or the path of a YAML profile.
	Board string `yaml:"board"`
	// Sim sets up the simulated board.
	Sim SimConfig `yaml:"sim"`
	// Watchdog is the hardware watchdog device to kick while camd runs
	// (e.g. /dev/watchdog; "" for none). A device that does not exist is
	// skipped.
	Watchdog string `yaml:"watchdog"`
}

// VideoConfig applies to the sources that encode (synthetic, capture).
type VideoConfig struct {
	Width            int           `yaml:"width"`
	Height           int           `yaml:"height"`
	FPS              int           `yaml:"fps"`
	Bitrate          int           `yaml:"bitrate"`
	MinBitrate       int           `yaml:"min_bitrate"`
	MaxBitrate       int           `yaml:"max_bitrate"`
	KeyframeInterval time.Duration `yaml:"keyframe_interval"`
}

// AudioConfig applies to the synthetic tone and the microphone.
type AudioConfig struct {
	Enabled bool `yaml:"enabled"`
	ToneHz  int  `yaml:"tone_hz"`
}

// PassthroughConfig names exactly one H.264 Annex-B input.
type PassthroughConfig struct {
	File    string   `yaml:"file"`
	FIFO    string   `yaml:"fifo"`
	Command []string `yaml:"command"`
	// FPS paces a file without timing information in its SPS.
	FPS  int  `yaml:"fps"`
	Loop bool `yaml:"loop"`
	// SnapshotCommand takes snapshots, which a hardware-encoded stream
	// gives no raw picture for: a program that prints one JPEG (the SoC's
	// JPEG tool, or a decoder fed the newest keyframe on its standard
	// input). Empty: snapshots answer 501.
	SnapshotCommand []string `yaml:"snapshot_command"`
	// KeyframeCommand asks the encoder for a keyframe when a viewer
	// joins (passthrough.Options.KeyframeCommand): the viewer goes live
	// from it instead of after the replayed group of pictures. Empty:
	// viewers start from the cached group of pictures alone.
	KeyframeCommand []string `yaml:"keyframe_command"`
}

// CaptureConfig selects the V4L2 camera and the ALSA microphone.
type CaptureConfig struct {
	Device string `yaml:"device"`
	// Microphone picks the ALSA capture device by a part of its name or
	// ID, or as an ALSA PCM name; empty: the default, then each card.
	Microphone string `yaml:"microphone"`
}

// LiveConfig tunes live view.
type LiveConfig struct {
	// MaxViewers bounds live and playback sessions together; the last
	// slot is kept for an owner.
	MaxViewers int `yaml:"max_viewers"`
	// MaxViewersPerUser bounds one user's sessions, those still
	// connecting included.
	MaxViewersPerUser int           `yaml:"max_viewers_per_user"`
	ICETimeout        time.Duration `yaml:"ice_timeout"`
	// UDPPort is the WebRTC media port; 0 means the Listen port.
	UDPPort int `yaml:"udp_port"`
	// ReplayBitrate paces the cached group of pictures (up to a keyframe
	// interval old) that a viewer of a passthrough source starts with, in
	// bits per second: the viewer's picture is live once that replay has
	// caught up. Faster is sooner live, up to what the link to the phones
	// carries without queueing in camd's socket (docs/benchmarks.md).
	ReplayBitrate int `yaml:"replay_bitrate"`
	// ICEServers are STUN and TURN servers told to WHEP clients (Link
	// headers, rel="ice-server"); camd itself answers with its own
	// addresses. None by default.
	ICEServers []ICEServerConfig `yaml:"ice_servers"`
}

// ICEServerConfig is one STUN or TURN server.
type ICEServerConfig struct {
	// URLs are stun:, stuns:, turn: or turns: URLs.
	URLs       []string `yaml:"urls"`
	Username   string   `yaml:"username"`
	Credential string   `yaml:"credential"`
}

// PushConfig is Web Push (docs/push.md). Nothing is pushed until a user
// subscribes a browser or phone.
type PushConfig struct {
	// Subject is the contact push services see in the VAPID claims:
	// "mailto:…" or an https URL (default camd's project page).
	Subject string `yaml:"subject"`
	// AllowPrivateEndpoints lets subscriptions point at loopback and
	// private addresses. For tests only: it lets any paired viewer make
	// camd connect into the LAN.
	AllowPrivateEndpoints bool `yaml:"allow_private_endpoints"`
}

// CORSConfig lets web pages on other origins call the viewer API.
type CORSConfig struct {
	// AllowedOrigins are origins ("https://ha.example:8123": scheme,
	// host and port, nothing else) whose pages may call the viewer API
	// (WHEP, snapshots, events, recordings) from a browser, still with a
	// credential. None by default. They are the default of the owner's
	// cors_allowed_origins setting, which replaces them once set.
	AllowedOrigins []string `yaml:"allowed_origins"`
}

// HTTPConfig bounds what clients can hold of the HTTPS server
// (docs/security.md, "HTTP limits").
type HTTPConfig struct {
	// MaxConnections is the most connections open at once; one more is
	// closed as it arrives, before TLS.
	MaxConnections int `yaml:"max_connections"`
	// MaxConnectionsPerAddress is the most one client address may have
	// open at once.
	MaxConnectionsPerAddress int `yaml:"max_connections_per_address"`
	// HandshakeTimeout bounds the TLS handshake, and then the headers of
	// each request.
	HandshakeTimeout time.Duration `yaml:"handshake_timeout"`
	// ReadTimeout bounds reading a whole request, headers and body. It
	// does not bound the answer: an export or an event stream runs on.
	ReadTimeout time.Duration `yaml:"read_timeout"`
}

// RTSPConfig turns on the RTSP server for NVRs and other standard
// clients (docs/rtsp.md).
type RTSPConfig struct {
	// Listen is the RTSP (TCP) address, e.g. ":8554"; empty: off (the
	// default for loopback runs; packaging/camd.yaml turns it on).
	Listen string `yaml:"listen"`
	// RTPPort is the UDP port of RTP (even; RTCP on the next); 0: TCP
	// transport only.
	RTPPort int `yaml:"rtp_port"`
	// MaxSessions bounds the RTSP sessions at once, MaxSessionsPerKey one
	// stream key's.
	MaxSessions       int `yaml:"max_sessions"`
	MaxSessionsPerKey int `yaml:"max_sessions_per_key"`
}

// ONVIFConfig turns on the ONVIF Profile S service for NVRs and Home
// Assistant (docs/onvif.md).
type ONVIFConfig struct {
	// Listen is the ONVIF service's plain HTTP (TCP) address, e.g. ":80",
	// the port ONVIF clients try first; empty: off (the default for
	// loopback runs; packaging/camd.yaml turns it on).
	Listen string `yaml:"listen"`
}

// NVRConfig bounds the cameras camd records besides its own (NVR mode,
// docs/nvr.md).
type NVRConfig struct {
	// MaxCameras bounds the cameras added.
	MaxCameras int `yaml:"max_cameras"`
	// SnapshotCommand, like passthrough.snapshot_command, prints one JPEG
	// of the newest keyframe (H.264 Annex-B on its standard input) of a
	// camera that gives none itself (RTSP, ONVIF); unset: those cameras
	// have no snapshots.
	SnapshotCommand []string `yaml:"snapshot_command"`
}

// CallsConfig times the doorbell's calls (docs/calls.md).
type CallsConfig struct {
	// RingTimeout: a call nobody answered is missed after it.
	RingTimeout time.Duration `yaml:"ring_timeout"`
	// MaxDuration: an answered call ends after it.
	MaxDuration time.Duration `yaml:"max_duration"`
	// Duplex is how the camera's microphone is handled while the phone's
	// voice plays on the speaker: half turns it down (a voice activity
	// detector with a hang time, media/talk.Gate), full cancels the
	// speaker's echo out of it (media/talk.Canceller, speexdsp through
	// cgo; a build without it runs half and says so).
	Duplex string `yaml:"duplex"`
}

// SimConfig sets up the simulated board (board: sim) for tests.
type SimConfig struct {
	// Echo loops the speaker into the microphone, EchoDelay later and
	// EchoLoss dB quieter (defaults 30 ms and 0 dB), so a call's echo
	// handling can be tested.
	Echo      bool          `yaml:"echo"`
	EchoDelay time.Duration `yaml:"echo_delay"`
	EchoLoss  float64       `yaml:"echo_loss"`
	// SpeakerFile, when set, is a file the simulated speaker also writes
	// what it plays to (raw 48 kHz mono 16-bit little-endian PCM,
	// truncated at start): tests of camd in a process of its own
	// (e2e/calls_qemu_test.go) hear it there.
	SpeakerFile string `yaml:"speaker_file"`
}

// DiscoveryConfig sets what camd announces on the LAN (docs/discovery.md).
type DiscoveryConfig struct {
	// Enabled announces _camd._tcp over mDNS.
	Enabled bool `yaml:"enabled"`
	// ONVIF answers WS-Discovery probes (Hello on start, Bye on stop).
	ONVIF bool `yaml:"onvif"`
	// Interfaces, when set, are the interfaces to announce on; otherwise
	// those that carry the listen address (none on loopback).
	Interfaces []string `yaml:"interfaces"`
}

// UpdateConfig is where updates come from and the hooks that install
// them (docs/updates.md). Checking stays off until the owner turns on
// the update_check setting.
type UpdateConfig struct {
	// FeedURL is the signed manifest's https URL ("" for no updates).
	FeedURL string `yaml:"feed_url"`
	// CAFile holds PEM certificates to trust for the update server
	// beside the system's (a private server); "" for the system's only.
	CAFile string `yaml:"ca_file"`
	// Product is the product a feed must name (a feed for another model
	// is refused).
	Product string `yaml:"product"`
	// InstallCommand installs an image into the other slot and makes it
	// the next boot's; the image's path is appended (["rauc",
	// "install"], ["swupdate", "-i"], or a script).
	InstallCommand []string `yaml:"install_command"`
	// MarkGoodCommand marks the running slot good after the health check
	// (["rauc", "status", "mark-good"]); RollbackCommand makes the old
	// slot the next boot's again (["rauc", "status", "mark-bad"]).
	MarkGoodCommand []string `yaml:"mark_good_command"`
	RollbackCommand []string `yaml:"rollback_command"`
	// RebootCommand reboots the device (["reboot"]).
	RebootCommand []string `yaml:"reboot_command"`
	// ConfirmTimeout is how long a new version has to pass its health
	// check (media flowing, the API answering) before it is rolled back.
	ConfirmTimeout time.Duration `yaml:"confirm_timeout"`

	// keys replaces the build's keys (update.TrustedKeys) in tests.
	keys []minisign.PublicKey
}

// MQTTConfig is the owner's MQTT broker, for Home Assistant and other
// home automation (docs/mqtt.md). Off by default: nothing is sent
// unless Enabled is set with a Broker.
type MQTTConfig struct {
	// Enabled publishes to Broker. Set to false with Broker kept, camd
	// connects once at its next start to remove what it published
	// (Home Assistant's discovery configs, retained states).
	Enabled bool `yaml:"enabled"`
	// Broker is mqtt://HOST[:1883] or mqtts://HOST[:8883].
	Broker string `yaml:"broker"`
	// Username and Password log in to the broker; PasswordFile, a file
	// holding the password, instead of Password. The password goes to
	// the broker only: never to the log or the API.
	Username     string `yaml:"username"`
	Password     string `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
	// CAFile trusts a private CA for an mqtts:// broker; PinSHA256
	// accepts the broker's certificate with this SHA-256 (hex) and no
	// other (a self-signed broker).
	CAFile    string `yaml:"ca_file"`
	PinSHA256 string `yaml:"pin_sha256"`
	// TopicPrefix is the first level of camd's topics (default camd),
	// DiscoveryPrefix Home Assistant's (default homeassistant).
	TopicPrefix     string `yaml:"topic_prefix"`
	DiscoveryPrefix string `yaml:"discovery_prefix"`
}

// NetworkConfig is how camd joins Wi-Fi (docs/network.md).
type NetworkConfig struct {
	// WiFi is the link manager: sim (a simulated radio, for hosts
	// without Wi-Fi), wpa_supplicant, or off (the owner API answers 503).
	WiFi string `yaml:"wifi"`
	// ControlSocket is wpa_supplicant's control socket for the interface
	// (ctrl_interface DIR, then the interface's name).
	ControlSocket string `yaml:"control_socket"`
	// LeaseCommand, if set, gets the DHCP lease after a join and exits 0
	// once it has one (e.g. [udhcpc, -i, wlan0, -n, -q]); otherwise camd
	// waits for wpa_supplicant to report the interface's address.
	LeaseCommand []string `yaml:"lease_command"`
	// JoinTimeout bounds associating with a new network; the lease has
	// as long again.
	JoinTimeout time.Duration `yaml:"join_timeout"`
	// Setup is the access point of setup mode: sim (simulated), hostapd,
	// or off.
	Setup string `yaml:"setup"`
	// Interface is the radio hostapd serves the access point on.
	Interface string `yaml:"interface"`
	// HostapdCommand and DHCPCommand replace hostapd and the DHCP server
	// (dnsmasq) of the access point.
	HostapdCommand []string `yaml:"hostapd_command"`
	DHCPCommand    []string `yaml:"dhcp_command"`

	// simNetworks replaces the simulated radio's neighbourhood in tests.
	simNetworks []network.SimNetwork
}

// LogConfig is the log camd keeps on the device (docs/observability.md).
type LogConfig struct {
	// RingSize bounds the log's files in the data directory, in bytes
	// (default 2 MiB).
	RingSize int64 `yaml:"ring_size"`
}

// Defaults is the embedded default: the synthetic camera, data in ./data,
// and loopback only.
func Defaults() Config {
	return Config{
		Listen:   "127.0.0.1:8443",
		Data:     "./data",
		LogLevel: "info",
		Name:     "camd",
		Source:   "synthetic",
		Video: VideoConfig{
			Width: 1280, Height: 720, FPS: 30,
			Bitrate: 2_000_000, MinBitrate: 300_000, MaxBitrate: 4_000_000,
			KeyframeInterval: 2 * time.Second,
		},
		Audio:       AudioConfig{Enabled: true, ToneHz: 440},
		Passthrough: PassthroughConfig{FPS: 30, Loop: true},
		Capture:     CaptureConfig{Device: "/dev/video0"},
		Live:        LiveConfig{MaxViewers: 16, MaxViewersPerUser: 4, ICETimeout: 10 * time.Second, ReplayBitrate: 20_000_000},
		HTTP:        HTTPConfig{MaxConnections: connlimit.DefaultMax, MaxConnectionsPerAddress: connlimit.DefaultMaxPerAddress, HandshakeTimeout: 5 * time.Second, ReadTimeout: 20 * time.Second},
		RTSP:        RTSPConfig{RTPPort: 8000, MaxSessions: 16, MaxSessionsPerKey: 8},
		NVR:         NVRConfig{MaxCameras: 16},
		Discovery:   DiscoveryConfig{Enabled: true, ONVIF: true},
		Recording:   defaultRecording(),
		Update:      UpdateConfig{Product: "camd", ConfirmTimeout: 10 * time.Minute},
		MQTT:        MQTTConfig{TopicPrefix: "camd", DiscoveryPrefix: "homeassistant"},
		Network: NetworkConfig{
			WiFi: "sim", ControlSocket: "/var/run/wpa_supplicant/wlan0", JoinTimeout: 30 * time.Second,
			Setup: "sim", Interface: "wlan0",
		},
		Log:          LogConfig{RingSize: logring.DefaultSize},
		CrashReports: "ask",
		Calls:        CallsConfig{RingTimeout: 30 * time.Second, MaxDuration: 3 * time.Minute, Duplex: "half"},
		Board:        "sim",
	}
}

// ErrConfig marks every configuration error.
var ErrConfig = errors.New("config")

// badValue is a configuration value that is not allowed: a
// *fielderr.Error that is ErrConfig.
func badValue(field string, value any, allowed string) error {
	return &fielderr.Error{Scope: "config", Field: field, Value: fmt.Sprint(value), Allowed: allowed, Kind: ErrConfig}
}

// LoadConfig applies the YAML file at path on top of c. Unknown fields are
// refused with the fields that are allowed.
func (c *Config) LoadConfig(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrConfig, err)
	}
	return c.Decode(bytes.NewReader(b))
}

// Decode applies YAML from r on top of c.
func (c *Config) Decode(r io.Reader) error {
	d := yaml.NewDecoder(r)
	d.KnownFields(true)
	if err := d.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: %s", ErrConfig, explainYAML(err))
	}
	return nil
}

var unknownField = regexp.MustCompile(`field (\S+) not found in type (\S+)`)

// explainYAML turns yaml.v3's messages into ones that name what is allowed.
func explainYAML(err error) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	msg = strings.TrimPrefix(msg, "unmarshal errors:\n  ")
	return unknownField.ReplaceAllStringFunc(msg, func(m string) string {
		sub := unknownField.FindStringSubmatch(m)
		return fmt.Sprintf("unknown field %q (allowed: %s)", sub[1], strings.Join(yamlFields(sub[2]), ", "))
	})
}

// yamlFields lists the yaml names of the config struct called typeName.
func yamlFields(typeName string) []string {
	for _, v := range []any{Config{}, VideoConfig{}, AudioConfig{}, PassthroughConfig{}, CaptureConfig{}, LiveConfig{}, HTTPConfig{}, RTSPConfig{}, ONVIFConfig{}, DiscoveryConfig{}, RecordingConfig{}, UpdateConfig{}, CallsConfig{}, SimConfig{}, MQTTConfig{}, NetworkConfig{}, LogConfig{}} {
		t := reflect.TypeOf(v)
		if "device."+t.Name() != typeName {
			continue
		}
		var names []string
		for i := range t.NumField() {
			if n, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); n != "" {
				names = append(names, n)
			}
		}
		return names
	}
	return nil
}

// checkListen checks an optional listen address: "" (off), HOST:PORT or
// :PORT.
func checkListen(field, v, example string) error {
	if v == "" {
		return nil
	}
	if host, port, err := net.SplitHostPort(v); err != nil || (host != "" && net.ParseIP(host) == nil && host != "localhost") {
		return badValue(field, strconv.Quote(v), `HOST:PORT or :PORT, e.g. "`+example+`", or "" for off`)
	} else if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return badValue(field, strconv.Quote(v), "a port from 0 to 65535")
	}
	return nil
}

// Validate checks every field and returns the first that is not allowed.
func (c *Config) Validate() error {
	host, port, err := net.SplitHostPort(c.Listen)
	if err != nil || (host != "" && net.ParseIP(host) == nil && host != "localhost") {
		return badValue("listen", strconv.Quote(c.Listen), "HOST:PORT with an IP address, e.g. 127.0.0.1:8443 or 0.0.0.0:8443")
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return badValue("listen", strconv.Quote(c.Listen), "a port from 0 to 65535")
	}
	if c.Data == "" {
		return badValue("data", `""`, "a directory path")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return badValue("log_level", strconv.Quote(c.LogLevel), "debug, info, warn, error")
	}
	if !settings.NameAllowed(c.Name) {
		return badValue("name", strconv.QuoteToASCII(c.Name), settings.NameRule)
	}
	checks := []struct {
		field     string
		v, lo, hi int
	}{
		{"video.width", c.Video.Width, 16, 3840},
		{"video.height", c.Video.Height, 16, 2160},
		{"video.fps", c.Video.FPS, 1, 60},
		{"video.bitrate", c.Video.Bitrate, 50_000, 20_000_000},
		{"video.min_bitrate", c.Video.MinBitrate, 50_000, c.Video.Bitrate},
		{"video.max_bitrate", c.Video.MaxBitrate, c.Video.Bitrate, 20_000_000},
		{"audio.tone_hz", c.Audio.ToneHz, 20, 20_000},
		{"passthrough.fps", c.Passthrough.FPS, 1, 120},
		{"live.max_viewers", c.Live.MaxViewers, 1, 1000},
		{"live.max_viewers_per_user", c.Live.MaxViewersPerUser, 1, 1000},
		{"live.udp_port", c.Live.UDPPort, 0, 65535},
		{"live.replay_bitrate", c.Live.ReplayBitrate, 1_000_000, 1_000_000_000},
		{"http.max_connections", c.HTTP.MaxConnections, 8, 65536},
		{"http.max_connections_per_address", c.HTTP.MaxConnectionsPerAddress, 1, c.HTTP.MaxConnections},
		{"rtsp.rtp_port", c.RTSP.RTPPort, 0, 65534},
		{"rtsp.max_sessions", c.RTSP.MaxSessions, 1, 1000},
		{"nvr.max_cameras", c.NVR.MaxCameras, 1, 64},
		{"rtsp.max_sessions_per_key", c.RTSP.MaxSessionsPerKey, 1, c.RTSP.MaxSessions},
	}
	for _, k := range checks {
		if k.v < k.lo || k.v > k.hi {
			return badValue(k.field, k.v, fmt.Sprintf("%d to %d", k.lo, k.hi))
		}
	}
	if err := checkListen("rtsp.listen", c.RTSP.Listen, ":8554"); err != nil {
		return err
	}
	if err := checkListen("onvif.listen", c.ONVIF.Listen, ":80"); err != nil {
		return err
	}
	if c.RTSP.RTPPort%2 != 0 {
		return badValue("rtsp.rtp_port", c.RTSP.RTPPort, "an even port (RTCP takes the next one), or 0 for TCP only")
	}
	if c.Video.Width%2 != 0 || c.Video.Height%2 != 0 {
		return badValue("video.width/height", fmt.Sprintf("%dx%d", c.Video.Width, c.Video.Height), "even numbers (4:2:0 video)")
	}
	if c.Video.KeyframeInterval < 100*time.Millisecond || c.Video.KeyframeInterval > time.Minute {
		return badValue("video.keyframe_interval", c.Video.KeyframeInterval, "100ms to 1m")
	}
	if c.Calls.RingTimeout < 5*time.Second || c.Calls.RingTimeout > 5*time.Minute {
		return badValue("calls.ring_timeout", c.Calls.RingTimeout, "5s to 5m")
	}
	if c.Calls.MaxDuration < 10*time.Second || c.Calls.MaxDuration > time.Hour {
		return badValue("calls.max_duration", c.Calls.MaxDuration, "10s to 1h")
	}
	if c.Calls.Duplex != "half" && c.Calls.Duplex != "full" {
		return badValue("calls.duplex", c.Calls.Duplex, "half or full")
	}
	if c.Sim.EchoDelay < 0 || c.Sim.EchoDelay > time.Second || c.Sim.EchoLoss < 0 || c.Sim.EchoLoss > 100 {
		return badValue("sim.echo_delay/echo_loss", fmt.Sprintf("%v/%g", c.Sim.EchoDelay, c.Sim.EchoLoss), "0 to 1s, 0 to 100 dB")
	}
	if c.Live.ICETimeout < time.Second || c.Live.ICETimeout > 5*time.Minute {
		return badValue("live.ice_timeout", c.Live.ICETimeout, "1s to 5m")
	}
	if c.HTTP.HandshakeTimeout < time.Second || c.HTTP.HandshakeTimeout > time.Minute {
		return badValue("http.handshake_timeout", c.HTTP.HandshakeTimeout, "1s to 1m")
	}
	if c.HTTP.ReadTimeout < time.Second || c.HTTP.ReadTimeout > 10*time.Minute {
		return badValue("http.read_timeout", c.HTTP.ReadTimeout, "1s to 10m")
	}
	if sc := c.NVR.SnapshotCommand; len(sc) > 0 && sc[0] == "" {
		return badValue("nvr.snapshot_command", fmt.Sprintf("%q", sc), "a program and its arguments, e.g. [/usr/bin/snap, --jpeg]")
	}
	switch c.Source {
	case "synthetic", "capture", "none":
	case "passthrough":
		n := 0
		for _, set := range []bool{c.Passthrough.File != "", c.Passthrough.FIFO != "", len(c.Passthrough.Command) > 0} {
			if set {
				n++
			}
		}
		if n != 1 {
			return badValue("passthrough", fmt.Sprintf("%d inputs", n), "exactly one of file, fifo, command")
		}
		if sc := c.Passthrough.SnapshotCommand; len(sc) > 0 && sc[0] == "" {
			return badValue("passthrough.snapshot_command", fmt.Sprintf("%q", sc), "a program and its arguments, e.g. [/usr/bin/snap, --jpeg]")
		}
		if kc := c.Passthrough.KeyframeCommand; len(kc) > 0 && kc[0] == "" {
			return badValue("passthrough.keyframe_command", fmt.Sprintf("%q", kc), "a program and its arguments, e.g. [wget, -q, -O, /dev/null, http://127.0.0.1/request/idr]")
		}
	default:
		return badValue("source", strconv.Quote(c.Source), "synthetic, passthrough, capture, none")
	}
	if sub := c.Push.Subject; sub != "" && !strings.HasPrefix(sub, "mailto:") && !strings.HasPrefix(sub, "https://") {
		return badValue("push.subject", strconv.Quote(sub), "mailto:you@example.com or an https:// URL")
	}
	for i, name := range c.Discovery.Interfaces {
		if name == "" || len(name) > 15 || strings.ContainsAny(name, "/ \t\n") || slices.Contains(c.Discovery.Interfaces[:i], name) {
			return badValue("discovery.interfaces", strconv.Quote(name), "distinct interface names of 1 to 15 characters, e.g. eth0, wlan0")
		}
	}
	for _, o := range c.CORS.AllowedOrigins {
		if !settings.OriginAllowed(o) {
			return badValue("cors.allowed_origins", strconv.Quote(o), "origins as a browser sends them: scheme://host[:port], e.g. https://ha.example:8123")
		}
	}
	if !settings.OriginsAllowed(c.CORS.AllowedOrigins) {
		return badValue("cors.allowed_origins", strconv.Itoa(len(c.CORS.AllowedOrigins))+" origins", "at most 32 distinct origins")
	}
	for _, srv := range c.Live.ICEServers {
		if len(srv.URLs) == 0 {
			return badValue("live.ice_servers", "[]", "each server with urls")
		}
		for _, u := range srv.URLs {
			scheme, rest, _ := strings.Cut(u, ":")
			if !slices.Contains([]string{"stun", "stuns", "turn", "turns"}, scheme) || rest == "" || strings.ContainsAny(u, "<>\"\r\n ") {
				return badValue("live.ice_servers", strconv.Quote(u), "stun:, stuns:, turn: or turns: URLs")
			}
		}
	}
	if c.Board != "sim" && !board.IsProfilePath(c.Board) && !slices.Contains(board.Profiles(), c.Board) {
		return badValue("board", strconv.Quote(c.Board), "sim, "+strings.Join(board.Profiles(), ", ")+", or the path of a YAML profile")
	}
	if err := c.Recording.validate(); err != nil {
		return err
	}
	if err := c.Update.validate(); err != nil {
		return err
	}
	if err := c.MQTT.validate(); err != nil {
		return err
	}
	if err := c.Network.validate(); err != nil {
		return err
	}
	if c.Log.RingSize < logring.MinSize || c.Log.RingSize > 64<<20 {
		return badValue("log.ring_size", c.Log.RingSize, fmt.Sprintf("%d to %d bytes", logring.MinSize, 64<<20))
	}
	switch c.CrashReports {
	case "never", "ask", "send":
	default:
		return badValue("crash_reports", strconv.Quote(c.CrashReports), "never, ask, send")
	}
	if u := c.CrashReportsURL; u != "" {
		if p, err := url.Parse(u); err != nil || p.Scheme != "https" || p.Host == "" {
			return badValue("crash_reports_url", strconv.Quote(u), "an https URL, e.g. https://crash.example.com/camd")
		}
	} else if c.CrashReports == "send" {
		return badValue("crash_reports_url", `""`, "an https URL: crash_reports is send")
	}
	if c.Source == "capture" && c.Capture.Device == "" {
		return badValue("capture.device", `""`, "a V4L2 device path such as /dev/video0")
	}
	return nil
}

func (n NetworkConfig) validate() error {
	if !slices.Contains([]string{"sim", "wpa_supplicant", "off"}, n.WiFi) {
		return badValue("network.wifi", strconv.Quote(n.WiFi), "sim, wpa_supplicant, off")
	}
	if n.WiFi == "wpa_supplicant" && !strings.HasPrefix(n.ControlSocket, "/") {
		return badValue("network.control_socket", strconv.Quote(n.ControlSocket), "an absolute path, e.g. /var/run/wpa_supplicant/wlan0")
	}
	if !slices.Contains([]string{"sim", "hostapd", "off"}, n.Setup) {
		return badValue("network.setup", strconv.Quote(n.Setup), "sim, hostapd, off")
	}
	if n.Setup == "hostapd" && (n.Interface == "" || len(n.Interface) > 15 || strings.ContainsAny(n.Interface, "/ \t\n")) {
		return badValue("network.interface", strconv.Quote(n.Interface), "an interface name of 1 to 15 characters, e.g. wlan0")
	}
	if n.JoinTimeout < 5*time.Second || n.JoinTimeout > 5*time.Minute {
		return badValue("network.join_timeout", n.JoinTimeout, "5s to 5m")
	}
	for _, c := range []struct {
		field string
		argv  []string
	}{{"network.lease_command", n.LeaseCommand}, {"network.hostapd_command", n.HostapdCommand}, {"network.dhcp_command", n.DHCPCommand}} {
		if len(c.argv) > 0 && c.argv[0] == "" {
			return badValue(c.field, fmt.Sprintf("%q", c.argv), "a program and its arguments, e.g. [udhcpc, -i, wlan0, -n, -q]")
		}
	}
	return nil
}

func (u UpdateConfig) validate() error {
	if u.FeedURL != "" {
		if p, err := url.Parse(u.FeedURL); err != nil || p.Scheme != "https" || p.Host == "" {
			return badValue("update.feed_url", strconv.Quote(u.FeedURL), "an https URL, e.g. https://updates.example.com/camd/stable.json")
		}
	}
	if u.Product == "" || strings.ContainsAny(u.Product, " \t\n\"") {
		return badValue("update.product", strconv.Quote(u.Product), "a product name without spaces, e.g. camd")
	}
	for _, c := range []struct {
		field string
		argv  []string
	}{
		{"update.install_command", u.InstallCommand}, {"update.mark_good_command", u.MarkGoodCommand},
		{"update.rollback_command", u.RollbackCommand}, {"update.reboot_command", u.RebootCommand},
	} {
		if len(c.argv) > 0 && c.argv[0] == "" {
			return badValue(c.field, fmt.Sprintf("%q", c.argv), "a program and its arguments, e.g. [rauc, install]")
		}
	}
	if len(u.InstallCommand) > 0 && len(u.RebootCommand) == 0 {
		return badValue("update.reboot_command", "[]", "a program and its arguments, e.g. [reboot]: an installed update starts at the reboot")
	}
	if u.ConfirmTimeout < 30*time.Second || u.ConfirmTimeout > time.Hour {
		return badValue("update.confirm_timeout", u.ConfirmTimeout, "30s to 1h")
	}
	return nil
}
