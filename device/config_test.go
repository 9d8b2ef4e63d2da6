package device

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/camd-project/camd/internal/fielderr"
)

func TestDefaultsAreValid(t *testing.T) {
	c := Defaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:8443" || c.Source != "synthetic" || c.Data != "./data" {
		t.Fatalf("embedded default changed: %+v", c)
	}
	if h := c.HTTP; h.MaxConnections != 256 || h.MaxConnectionsPerAddress != 32 || h.HandshakeTimeout != 5*time.Second || h.ReadTimeout != 20*time.Second {
		t.Fatalf("HTTP limits %+v, want 256 connections, 32 per address, 5 s handshake, 20 s read (docs/security.md)", h)
	}
}

// The configurations shown in README.md and packaging/camd.yaml load and
// validate: the documentation names only fields camd knows.
func TestDocumentedConfigsAreValid(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(readme), "```yaml\nlisten:")
	block, _, _ = strings.Cut(block, "```")
	if !ok {
		t.Fatal("README.md shows no configuration")
	}
	pkg, err := os.ReadFile("../packaging/camd.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for name, y := range map[string]string{"README.md": "listen:" + block, "packaging/camd.yaml": string(pkg)} {
		c := Defaults()
		if err := c.Decode(strings.NewReader(y)); err != nil {
			t.Errorf("%s: %v", name, err)
		} else if err := c.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestConfigFileOverridesDefaults(t *testing.T) {
	c := Defaults()
	err := c.Decode(strings.NewReader(`
listen: 0.0.0.0:9443
video: {fps: 15, width: 640, height: 480}
live: {ice_timeout: 30s}
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "0.0.0.0:9443" || c.Video.FPS != 15 || c.Video.Width != 640 || c.Live.ICETimeout != 30*time.Second {
		t.Fatalf("file not applied: %+v", c)
	}
	if c.Video.Bitrate != 2_000_000 || c.Live.MaxViewers != 16 {
		t.Fatalf("defaults lost: %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestBadConfigNamesFieldValueAndAllowed(t *testing.T) {
	cases := []struct {
		name, yaml string
		want       []string
	}{
		{"fps out of range", "video: {fps: 500}", []string{"video.fps", "500", "1 to 60"}},
		{"unknown source", "source: webcam", []string{"source", `"webcam"`, "synthetic, passthrough, capture"}},
		{"bad listen", "listen: camera.local", []string{"listen", "camera.local", "HOST:PORT"}},
		{"odd width", "video: {width: 641}", []string{"video.width/height", "641x720", "even"}},
		{"bitrate bounds", "video: {min_bitrate: 5000000}", []string{"video.min_bitrate", "5000000", "50000 to 2000000"}},
		{"passthrough without input", "source: passthrough", []string{"passthrough", "0 inputs", "exactly one of file, fifo, command"}},
		{"passthrough with two inputs", "source: passthrough\npassthrough: {file: a.h264, fifo: /tmp/f}", []string{"2 inputs"}},
		{"log level", "log_level: loud", []string{"log_level", "loud", "debug, info, warn, error"}},
		{"short ice timeout", "live: {ice_timeout: 10ms}", []string{"live.ice_timeout", "10ms", "1s to 5m"}},
		{"origin with a path", "cors: {allowed_origins: ['https://ha.example/lovelace']}", []string{"cors.allowed_origins", "https://ha.example/lovelace", "scheme://host[:port]"}},
		{"origin wildcard", "cors: {allowed_origins: ['*']}", []string{"cors.allowed_origins", `"*"`}},
		{"ICE server of another scheme", "live: {ice_servers: [{urls: ['http://stun.example']}]}", []string{"live.ice_servers", "http://stun.example", "stun:"}},
		{"no viewer per user", "live: {max_viewers_per_user: 0}", []string{"live.max_viewers_per_user", "0", "1 to 1000"}},
		{"replay slower than a stream", "live: {replay_bitrate: 500000}", []string{"live.replay_bitrate", "500000", "1000000 to 1000000000"}},
		{"unknown field", "video:\n  fsp: 30\n", []string{"line 2", `unknown field "fsp"`, "width, height, fps"}},
		{"wrong type", "video: {fps: fast}", []string{"fast", "int"}},
		{"not yaml", "video: [", []string{"config"}},
		{"unknown board", "board: raspberry", []string{"board", `"raspberry"`, "sim, gpiochip, rpi, or the path of a YAML profile"}},
		{"no connections", "http: {max_connections: 0}", []string{"http.max_connections", "0", "8 to 65536"}},
		{"more per address than in all", "http: {max_connections: 64, max_connections_per_address: 65}", []string{"http.max_connections_per_address", "65", "1 to 64"}},
		{"no handshake time", "http: {handshake_timeout: 0s}", []string{"http.handshake_timeout", "0s", "1s to 1m"}},
		{"read timeout of an hour", "http: {read_timeout: 1h}", []string{"http.read_timeout", "1h0m0s", "1s to 10m"}},
		{"name with a bidi override", "name: \"Porch\\u202Egnp\"", []string{"name", `"Porch\u202egnp"`, "format characters"}},
		{"name too long", "name: " + strings.Repeat("x", 64), []string{"name", "1 to 63 characters"}},
		{"fsck command without a program", "recording: {fsck_command: ['', -a]}", []string{"recording.fsck_command", `["" "-a"]`, "a program and its arguments"}},
		{"format command without a program", "recording: {format_command: ['']}", []string{"recording.format_command", "the card's device is added last"}},
		{"update feed over http", "update: {feed_url: 'http://updates.example.com/f.json'}", []string{"update.feed_url", "an https URL"}},
		{"tiny log ring", "log: {ring_size: 1000}", []string{"log.ring_size", "65536 to 67108864 bytes"}},
		{"crash reports mode", "crash_reports: always", []string{"crash_reports", "never, ask, send"}},
		{"crash reports sent nowhere", "crash_reports: send", []string{"crash_reports_url", "an https URL"}},
		{"crash collector over http", "crash_reports_url: http://crash.example.com/", []string{"crash_reports_url", "an https URL"}},
		{"installer without reboot", "update: {install_command: [rauc, install]}", []string{"update.reboot_command", "[]", "an installed update starts at the reboot"}},
		{"confirm timeout too short", "update: {confirm_timeout: 5s}", []string{"update.confirm_timeout", "5s", "30s to 1h"}},
		{"no product", "update: {product: ''}", []string{"update.product", `""`}},
		{"unknown update field", "update: {feed: x}", []string{`unknown field "feed"`, "feed_url, ca_file, product, install_command"}},
		{"onvif listen without a port", "onvif: {listen: camera}", []string{"onvif.listen", `"camera"`, `":80"`}},
		{"onvif port out of range", "onvif: {listen: ':70000'}", []string{"onvif.listen", "a port from 0 to 65535"}},
		{"unknown onvif field", "onvif: {port: 80}", []string{`unknown field "port"`, "listen"}},
		{"unknown http field", "http: {max_conns: 5}", []string{`unknown field "max_conns"`, "max_connections, max_connections_per_address, handshake_timeout, read_timeout"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := Defaults()
			err := cfg.Decode(strings.NewReader(c.yaml))
			if err == nil {
				err = cfg.Validate()
			}
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, ErrConfig) {
				t.Errorf("%v is not ErrConfig", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// TestRequireMount: recording.path outside the data directory is a card
// unless the configuration says otherwise; under it, not.
func TestRequireMount(t *testing.T) {
	yes, no := true, false
	for _, c := range []struct {
		data, path string
		set        *bool
		want       bool
	}{
		{"/var/lib/camd", "", nil, false},
		{"/var/lib/camd", "/var/lib/camd/rec", nil, false},
		{"./data", "data/rec", nil, false},
		{"/var/lib/camd", "/var/lib/camd-rec", nil, true},
		{"/var/lib/camd", "/mnt/sd/camd", nil, true},
		{"/var/lib/camd", "/mnt/sd/camd", &no, false},
		{"/var/lib/camd", "/var/lib/camd/sd", &yes, true},
		{"/var/lib/camd", "", &yes, true},
	} {
		cfg := Defaults()
		cfg.Data, cfg.Recording.Path, cfg.Recording.RequireMount = c.data, c.path, c.set
		if got := requireMount(cfg); got != c.want {
			t.Errorf("data %s, path %q, require_mount %v: %v", c.data, c.path, c.set, got)
		}
	}
}

func TestLoadConfigMissingFile(t *testing.T) {
	c := Defaults()
	err := c.LoadConfig(filepath.Join(t.TempDir(), "nope.yaml"))
	if !errors.Is(err, ErrConfig) || !errors.Is(err, os.ErrNotExist) && !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("missing file: %v", err)
	}
}

func TestDiscoveryConfig(t *testing.T) {
	c := Defaults()
	if !c.Discovery.Enabled || !c.Discovery.ONVIF || len(c.Discovery.Interfaces) != 0 {
		t.Fatalf("discovery defaults %+v: want mDNS and ONVIF on, interfaces from the listen address", c.Discovery)
	}
	if err := c.Decode(strings.NewReader("discovery: {onvif: false, interfaces: [eth0, wlan0]}\n")); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil || c.Discovery.ONVIF || !c.Discovery.Enabled || len(c.Discovery.Interfaces) != 2 {
		t.Fatalf("%+v, %v", c.Discovery, err)
	}
	for _, bad := range []string{
		"discovery: {interfaces: [eth0, eth0]}\n",
		"discovery: {interfaces: ['']}\n",
		"discovery: {interfaces: [averyveryverylongname0]}\n",
	} {
		c := Defaults()
		if err := c.Decode(strings.NewReader(bad)); err != nil {
			t.Fatal(err)
		}
		err := c.Validate()
		var fe *fielderr.Error
		if !errors.As(err, &fe) || fe.Field != "discovery.interfaces" {
			t.Errorf("%q: %v, want a discovery.interfaces error", bad, err)
		}
	}
	c = Defaults()
	err := c.Decode(strings.NewReader("discovery: {mdns: true}\n"))
	if err == nil || !strings.Contains(err.Error(), "enabled, onvif, interfaces") {
		t.Errorf("unknown discovery field: %v", err)
	}
}
