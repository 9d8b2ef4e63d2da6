package device

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/camd-project/camd/board"
	"github.com/camd-project/camd/device/settings"
	"github.com/camd-project/camd/internal/testenv"
	"github.com/camd-project/camd/media/synthetic"
)

// runningAt starts a daemon on the given configuration and stops it when
// the test ends (or when stop is called).
func runningAt(t *testing.T, cfg Config) (d *Daemon, stop func()) {
	t.Helper()
	d, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
	t.Cleanup(stop)
	return d, stop
}

// patchSettings sends PATCH /api/v1/settings with a raw body.
func patchSettings(t *testing.T, d *Daemon, token, contentType, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("PATCH", "https://"+d.Addr().String()+"/api/v1/settings", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := testClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func passthroughConfig(t *testing.T) Config {
	cfg := Defaults()
	cfg.Data = t.TempDir()
	cfg.Listen = "127.0.0.1:0"
	cfg.Source = "passthrough"
	cfg.Passthrough.FIFO = filepath.Join(cfg.Data, "no-writer.fifo")
	return cfg
}

func TestSettingsOverHTTPS(t *testing.T) {
	cfg := passthroughConfig(t)
	cfg.Name = "Porch"
	d, stop := runningAt(t, cfg)
	tok := owner(t, d)

	code, b := call(t, d, "GET", "/api/v1/settings", tok, nil)
	var got settings.Settings
	if err := json.Unmarshal(b, &got); code != 200 || err != nil {
		t.Fatalf("GET: %d %s", code, b)
	}
	want := settings.Defaults()
	want.Name = "Porch" // the configuration's name is the default
	if got != want {
		t.Fatalf("GET %+v, want %+v", got, want)
	}

	code, out := patchSettings(t, d, tok, "application/merge-patch+json",
		`{"mute": true, "night_mode": "night", "status_led": false, "bitrate": 1000000, "recording_mode": "motion"}`)
	if code != 200 || out["mute"] != true || out["night_mode"] != "night" || out["name"] != "Porch" {
		t.Fatalf("PATCH: %d %v", code, out)
	}
	// Applied live: the sim board's IR-cut moves, the LED follows the
	// setting, the encoder's ceiling is the new bitrate.
	testenv.Eventually(t, "night mode applied", func() bool { return d.board.sim.Night() && d.board.sim.IRLED() })
	if d.board.dayNight.Mode() != board.ModeNight {
		t.Fatal("day/night mode not set")
	}
	if d.board.status.Pattern() != nil {
		t.Fatalf("status LED off but pattern %v", d.board.status.Pattern())
	}
	if c := d.settings.live.ceiling.Load(); c != 1_000_000 {
		t.Fatalf("bitrate ceiling %d", c)
	}

	// Refusals: the field, the value and what is allowed.
	cases := []struct {
		body  string
		ctype string
		code  int
		want  []string
	}{
		{`{"fps": 500}`, "application/json", 422, []string{`"field":"fps"`, `"value":500`, `"allowed":"a whole number from 1 to 60"`}},
		{`{"zoom": 2}`, "application/json", 422, []string{`"field":"zoom"`, "a known setting"}},
		{`{"mute": "yes"}`, "", 422, []string{`"field":"mute"`, `"value":"yes"`, "true or false"}},
		{`{"bitrate": 9000000}`, "application/json", 422, []string{"300000 to 4000000"}},
		{`[1,2]`, "application/json", 400, []string{"JSON object"}},
		{`{"mute": tru`, "application/json", 400, []string{"JSON object"}},
		{`mute=true`, "application/x-www-form-urlencoded", 415, []string{"application/json"}},
		{`{"name": "` + strings.Repeat("x", 70<<10) + `"}`, "application/json", 413, []string{"64 KiB"}},
	}
	for _, c := range cases {
		code, out := patchSettings(t, d, tok, c.ctype, c.body)
		raw, _ := json.Marshal(out)
		if code != c.code {
			t.Errorf("%.40s: %d %s, want %d", c.body, code, raw, c.code)
		}
		for _, w := range c.want {
			if !strings.Contains(string(raw), w) {
				t.Errorf("%.40s: answer %s lacks %s", c.body, raw, w)
			}
		}
	}

	// A viewer may not read or change the settings.
	vtok := viewer(t, d, tok)
	if code, _ := call(t, d, "GET", "/api/v1/settings", vtok, nil); code != http.StatusForbidden {
		t.Fatalf("viewer GET: %d", code)
	}

	// The settings survive a restart, and apply from the start.
	stop()
	d, _ = runningAt(t, cfg)
	s := d.Settings()
	if !s.Mute || s.NightMode != "night" || s.StatusLED || s.Bitrate != 1_000_000 || s.RecordingMode != "motion" {
		t.Fatalf("after restart: %+v", s)
	}
	testenv.Eventually(t, "night mode after restart", func() bool { return d.board.sim.Night() })
	if d.board.status.Pattern() != nil {
		t.Fatal("status LED not off after restart")
	}
}

func TestSettingsApplyToTheSyntheticSource(t *testing.T) {
	cfg := testConfig(t)
	cfg.Audio.Enabled = false
	d, _ := runningAt(t, cfg)
	first := d.settings.live.current().(*synthetic.Source)
	if o := first.Options().Video; o.Width != 320 || o.Height != 240 || o.FPS != 15 {
		t.Fatalf("source built with %dx%d@%d", o.Width, o.Height, o.FPS)
	}
	before, after, err := d.settings.store.Set(map[string]any{"resolution": "640x360", "fps": 10, "flip": true})
	if err != nil {
		t.Fatal(err)
	}
	d.settings.apply(before, after)
	src := d.settings.live.current().(*synthetic.Source)
	if src == first {
		t.Fatal("source not rebuilt for a new resolution")
	}
	if o := src.Options().Video; o.Width != 640 || o.Height != 360 || o.FPS != 10 {
		t.Fatalf("rebuilt with %dx%d@%d", o.Width, o.Height, o.FPS)
	}
	if flip, mirror := src.Flip(); !flip || mirror {
		t.Fatal("flip not applied to the rebuilt source")
	}
	// Live controls apply to the running source without a rebuild.
	before, after, _ = d.settings.store.Set(map[string]any{"mirror": true, "mute": true, "time_zone": "Asia/Tokyo"})
	d.settings.apply(before, after)
	if _, mirror := src.Flip(); d.settings.live.current() != src || !mirror || !src.Muted() || src.Location().String() != "Asia/Tokyo" {
		t.Fatal("live controls not applied")
	}
}

func TestAutoStart(t *testing.T) {
	cfg := passthroughConfig(t)
	on, err := AutoStart(cfg, slog.New(slog.DiscardHandler))
	if err != nil || !on {
		t.Fatalf("a new camera starts at boot: %v %v", on, err)
	}
	d, stop := runningAt(t, cfg)
	if _, err := AutoStart(cfg, slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("AutoStart read the catalog of a running camd")
	}
	d.settings.store.Set(map[string]any{"auto_start": false})
	stop()
	on, err = AutoStart(cfg, slog.New(slog.DiscardHandler))
	if err != nil || on {
		t.Fatalf("auto start off: %v %v", on, err)
	}
}

func TestSettingsNameOutOfConfigRange(t *testing.T) {
	// Settings refuse what the configuration would refuse.
	cfg := passthroughConfig(t)
	d, _ := runningAt(t, cfg)
	tok := owner(t, d)
	body, _ := json.Marshal(map[string]string{"name": strings.Repeat("n", 64)})
	code, out := patchSettings(t, d, tok, "application/json", string(bytes.TrimSpace(body)))
	if code != 422 || out["field"] != "name" {
		t.Fatalf("%d %v", code, out)
	}
}
