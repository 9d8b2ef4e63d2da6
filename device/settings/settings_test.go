package settings

import (
	"encoding/json"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/camd-project/camd/internal/fielderr"
	"github.com/camd-project/camd/storage"
)

// openCatalog opens a catalog that is checked for consistency when the
// test ends.
func openCatalog(t *testing.T, path string) *storage.Catalog {
	t.Helper()
	c, err := storage.OpenCatalog(path, storage.CatalogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Check(); err != nil && !errors.Is(err, berrors.ErrDatabaseNotOpen) {
			t.Errorf("catalog inconsistent: %v", err)
		}
		c.Close()
	})
	return c
}

func raw(t *testing.T, c *storage.Catalog, key string) string {
	t.Helper()
	var v string
	c.View(func(tx *bbolt.Tx) error {
		v = string(tx.Bucket(storage.BucketSettings).Get([]byte(key)))
		return nil
	})
	return v
}

func put(t *testing.T, c *storage.Catalog, key, value string) {
	t.Helper()
	err := c.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(storage.BucketSettings).Put([]byte(key), []byte(value))
	})
	if err != nil {
		t.Fatal(err)
	}
}

func patch(t *testing.T, s *Store, js string) (Settings, error) {
	t.Helper()
	var p map[string]json.RawMessage
	if err := json.Unmarshal([]byte(js), &p); err != nil {
		t.Fatal(err)
	}
	_, after, err := s.Patch(p)
	return after, err
}

func TestDefaultsAreValid(t *testing.T) {
	if err := Defaults().Validate(Limits{}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(Keys(), ","); got != "name,time_zone,auto_start,mute,resolution,fps,bitrate,flip,mirror,night_mode,status_led,recording_mode,motion_sensitivity,speaker_volume,update_check,crash_reports,whip_url,whip_token,whip_pin_sha256,cors_allowed_origins" {
		t.Fatalf("keys: %s", got)
	}
}

func TestSettingsSurviveReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "catalog.db")
	c := openCatalog(t, path)
	s, err := Open(c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Get() != Defaults() {
		t.Fatalf("new store: %+v", s.Get())
	}
	after, err := patch(t, s, `{"name":"Porch","mute":true,"resolution":"640x480","fps":15,"bitrate":800000,
		"flip":true,"night_mode":"night","status_led":false,"recording_mode":"motion","motion_sensitivity":80,
		"time_zone":"Europe/Paris","auto_start":false,"mirror":true}`)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()

	c = openCatalog(t, path)
	s, err = Open(c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Get() != after {
		t.Fatalf("after reopen %+v, want %+v", s.Get(), after)
	}
	if w, h := after.Size(); w != 640 || h != 480 {
		t.Fatalf("size %dx%d", w, h)
	}
	if after.Location().String() != "Europe/Paris" {
		t.Fatal(after.Location())
	}
}

func TestBadValuesNameFieldValueAndAllowed(t *testing.T) {
	cases := []struct {
		name, patch string
		want        []string
	}{
		{"unknown setting", `{"brightness": 5}`, []string{"brightness", "5", "a known setting: name, time_zone,"}},
		{"fps out of range", `{"fps": 500}`, []string{"fps", "500", "1 to 60"}},
		{"fps not whole", `{"fps": 12.5}`, []string{"fps", "12.5", "a whole number"}},
		{"fps as text", `{"fps": "30"}`, []string{"fps", `"30"`, "a whole number"}},
		{"mute as text", `{"mute": "yes"}`, []string{"mute", `"yes"`, "true or false"}},
		{"name as number", `{"name": 7}`, []string{"name", "7", "text of 1 to 63"}},
		{"empty name", `{"name": ""}`, []string{"name", `""`, "1 to 63"}},
		{"name with newline", `{"name": "a\nb"}`, []string{"name", "control characters"}},
		{"odd resolution", `{"resolution": "641x480"}`, []string{"resolution", `"641x480"`, "even numbers"}},
		{"resolution garbage", `{"resolution": "hd"}`, []string{"resolution", `"hd"`, "WIDTHxHEIGHT"}},
		{"resolution too big", `{"resolution": "7680x4320"}`, []string{"3840x2160"}},
		{"bitrate beyond the device", `{"bitrate": 9000000}`, []string{"bitrate", "9000000", "300000 to 4000000"}},
		{"night mode", `{"night_mode": "dusk"}`, []string{"night_mode", `"dusk"`, `"auto", "day" or "night"`}},
		{"recording mode", `{"recording_mode": "always"}`, []string{"recording_mode", `"continuous", "motion" or "off"`}},
		{"sensitivity", `{"motion_sensitivity": 0}`, []string{"motion_sensitivity", "0", "1 to 100"}},
		{"time zone", `{"time_zone": "Mars/Olympus"}`, []string{"time_zone", "Mars/Olympus", "IANA"}},
		{"time zone Local", `{"time_zone": "Local"}`, []string{"time_zone"}},
		{"object value", `{"flip": {"x": 1}}`, []string{"flip", "true or false"}},
		{"WHIP URL not http", `{"whip_url": "rtmp://sfu/live"}`, []string{"whip_url", `"rtmp://sfu/live"`, "https://"}},
		{"WHIP URL with a password", `{"whip_url": "https://u:p@sfu/whip"}`, []string{"whip_url", "without user:password@"}},
		{"WHIP URL with a space", `{"whip_url": "https://sfu/a b"}`, []string{"whip_url"}},
		{"pin not hex", `{"whip_pin_sha256": "zz"}`, []string{"whip_pin_sha256", "64 hex digits"}},
		{"pin with http", `{"whip_url": "http://sfu/whip", "whip_pin_sha256": "` + strings.Repeat("ab", 32) + `"}`, []string{"whip_pin_sha256", "https://"}},
		{"origin with a path", `{"cors_allowed_origins": ["https://ha.example/x"]}`, []string{"cors_allowed_origins", "https://ha.example/x", "scheme://host[:port]"}},
		{"origin twice", `{"cors_allowed_origins": ["https://a.example", "https://a.example"]}`, []string{"cors_allowed_origins", "distinct"}},
		{"origin with a space", `{"cors_allowed_origins": ["https://a.example https://b.example"]}`, []string{"cors_allowed_origins"}},
		{"empty origin", `{"cors_allowed_origins": [""]}`, []string{"cors_allowed_origins"}},
		{"origins as text", `{"cors_allowed_origins": "https://a.example"}`, []string{"cors_allowed_origins"}},
	}
	c := openCatalog(t, filepath.Join(t.TempDir(), "catalog.db"))
	s, err := Open(c, Options{Limits: Limits{MinBitrate: 300_000, MaxBitrate: 4_000_000}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := patch(t, s, tc.patch)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("%v is not ErrInvalid", err)
			}
			var fe *fielderr.Error
			if !errors.As(err, &fe) {
				t.Fatalf("%T is not a *fielderr.Error", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	if s.Get() != Defaults() || raw(t, c, "settings") != "" {
		t.Fatal("a refused value changed the settings")
	}
}

// TestWHIPTokenIsNeverShown: a refused token is not quoted in the
// error, and the settings as the API shows them carry no token.
func TestWHIPTokenIsNeverShown(t *testing.T) {
	c := openCatalog(t, filepath.Join(t.TempDir(), "catalog.db"))
	s, err := Open(c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{`"tok en-secret"`, `"secret\r\nX: y"`, `7`, `["secret"]`} {
		_, err := patch(t, s, `{"whip_token": `+bad+`}`)
		fe, ok := fielderr.As(err)
		if !ok || fe.Field != "whip_token" || strings.Contains(err.Error(), "secret") || strings.Contains(fe.Value, "secret") {
			t.Errorf("%s: %v (value %q)", bad, err, fe.Value)
		}
	}
	after, err := patch(t, s, `{"whip_url": "https://sfu.example/cam/whip", "whip_token": "a.b-c_d~e+f/g="}`)
	if err != nil {
		t.Fatal(err)
	}
	if after.WHIPToken != "a.b-c_d~e+f/g=" {
		t.Fatalf("token %q", after.WHIPToken)
	}
	shown, _ := json.Marshal(after.Redacted())
	if strings.Contains(string(shown), "a.b-c") || !strings.Contains(string(shown), `"whip_token_set":true`) ||
		!strings.Contains(string(shown), `"whip_url":"https://sfu.example/cam/whip"`) {
		t.Errorf("shown: %s", shown)
	}
	if shown, _ := json.Marshal(Defaults().Redacted()); strings.Contains(string(shown), `"whip_token":`) || !strings.Contains(string(shown), `"whip_token_set":false`) {
		t.Errorf("no token: %s", shown)
	}
	if _, err := patch(t, s, `{"whip_token_set": false}`); err == nil {
		t.Error("whip_token_set is not a setting")
	}
	// A pin, with colons or without; the URL can then be turned off.
	for _, pin := range []string{strings.Repeat("0A", 32), strings.TrimSuffix(strings.Repeat("0a:", 32), ":")} {
		if _, err := patch(t, s, `{"whip_pin_sha256": "`+pin+`"}`); err != nil {
			t.Errorf("pin %s: %v", pin, err)
		}
	}
	if b, ok := PinBytes(s.Get().WHIPPinSHA256); !ok || len(b) != 32 || b[0] != 0x0a {
		t.Errorf("pin %x", b)
	}
	if _, err := patch(t, s, `{"whip_url": ""}`); err != nil {
		t.Errorf("off with a pin: %v", err)
	}
	// null takes the token away.
	after, err = patch(t, s, `{"whip_token": null}`)
	if err != nil || after.WHIPToken != "" {
		t.Fatalf("%v, %q", err, after.WHIPToken)
	}
}

func TestCORSOrigins(t *testing.T) {
	path := filepath.Join(t.TempDir(), "catalog.db")
	c := openCatalog(t, path)
	def := Defaults()
	def.CORSAllowedOrigins = NewOrigins("https://config.example")
	s, err := Open(c, Options{Defaults: &def})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Get().CORSAllowedOrigins.List(); len(got) != 1 || got[0] != "https://config.example" {
		t.Fatalf("default %q", got)
	}
	after, err := patch(t, s, `{"cors_allowed_origins": ["https://ha.example:8123", "http://192.168.1.5:8123"]}`)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := json.Marshal(after); !strings.Contains(string(b), `"cors_allowed_origins":["https://ha.example:8123","http://192.168.1.5:8123"]`) {
		t.Errorf("JSON: %s", b)
	}
	c.Close()
	c = openCatalog(t, path)
	if s, err = Open(c, Options{Defaults: &def}); err != nil {
		t.Fatal(err)
	}
	if s.Get() != after {
		t.Fatalf("after reopen %q", s.Get().CORSAllowedOrigins)
	}
	after, err = patch(t, s, `{"cors_allowed_origins": []}`)
	if err != nil || len(after.CORSAllowedOrigins.List()) != 0 {
		t.Fatalf("none: %v %q", err, after.CORSAllowedOrigins)
	}
	if b, _ := json.Marshal(after); !strings.Contains(string(b), `"cors_allowed_origins":[]`) {
		t.Errorf("JSON: %s", b)
	}
	if after, err = patch(t, s, `{"cors_allowed_origins": null}`); err != nil || after.CORSAllowedOrigins != def.CORSAllowedOrigins {
		t.Fatalf("null: %v %q", err, after.CORSAllowedOrigins)
	}
}

// TestNameRefusesControlAndFormatCharacters: the camera's name holds no
// Unicode Cc or Cf character (bidi overrides, zero-width characters,
// escapes); the error names the field, the value (as JSON, with those
// characters escaped) and what is allowed.
func TestNameRefusesControlAndFormatCharacters(t *testing.T) {
	c := openCatalog(t, filepath.Join(t.TempDir(), "catalog.db"))
	s, err := Open(c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// The same kinds as device/pairing's test of user names: overrides
	// and isolates, zero width, C0 and C1, a tag outside the BMP.
	hostile := []string{"Front\u202erood", "a\u2066b\u2069", "zero\u200bwidth\ufeff", "esc\x1b[2J\x7f\u0085", "tag\U000E0041\u00ad"}
	for _, name := range hostile {
		body, _ := json.Marshal(map[string]string{"name": name})
		_, err := patch(t, s, string(body))
		var fe *fielderr.Error
		if !errors.As(err, &fe) || !errors.Is(err, ErrInvalid) || fe.Field != "name" || !strings.Contains(fe.Allowed, "format characters") {
			t.Errorf("%q: %v", name, err)
			continue
		}
		if strings.ContainsFunc(err.Error(), controlOrFormat) {
			t.Errorf("%q: the error carries it raw: %q", name, err)
		}
		var back string
		if err := json.Unmarshal([]byte(fe.Value), &back); err != nil || back != name {
			t.Errorf("%q: value %s is not its JSON (%q, %v)", name, fe.Value, back, err)
		}
	}
	if _, err := patch(t, s, `{"name": "Küche 🚪 カメラ"}`); err != nil {
		t.Fatalf("a name in other scripts: %v", err)
	}
}

func TestPatchIsAllOrNothing(t *testing.T) {
	c := openCatalog(t, filepath.Join(t.TempDir(), "catalog.db"))
	s, _ := Open(c, Options{})
	if _, err := patch(t, s, `{"mute": true}`); err != nil {
		t.Fatal(err)
	}
	stored := raw(t, c, "settings")
	_, err := patch(t, s, `{"name": "Garage", "fps": 0, "flip": true}`)
	if err == nil || !strings.Contains(err.Error(), "fps") {
		t.Fatalf("%v", err)
	}
	if g := s.Get(); g.Name != "camd" || g.Flip || !g.Mute {
		t.Fatalf("partly applied: %+v", g)
	}
	if raw(t, c, "settings") != stored {
		t.Fatal("a refused patch was stored")
	}
}

func TestUnchangedSettingsFollowTheDefaults(t *testing.T) {
	path := filepath.Join(t.TempDir(), "catalog.db")
	c := openCatalog(t, path)
	def := Defaults()
	s, _ := Open(c, Options{Defaults: &def})
	patch(t, s, `{"fps": 10}`)
	if got := raw(t, c, "settings"); got != `{"version":1,"values":{"fps":10}}` {
		t.Fatalf("stored %s", got)
	}
	// The integrator changes the configuration: the owner's choice
	// stays, the rest follows.
	def.FPS, def.Name = 25, "Doorbell"
	s, _ = Open(c, Options{Defaults: &def})
	if g := s.Get(); g.FPS != 10 || g.Name != "Doorbell" {
		t.Fatalf("%+v", g)
	}
	// null restores the default and forgets the owner's value.
	after, err := patch(t, s, `{"fps": null}`)
	if err != nil || after.FPS != 25 {
		t.Fatalf("%v %+v", err, after)
	}
	if got := raw(t, c, "settings"); got != `{"version":1,"values":{}}` {
		t.Fatalf("stored %s", got)
	}
	// Invalid defaults are a programming error, reported.
	def.FPS = 0
	if _, err := Open(c, Options{Defaults: &def}); err == nil || !strings.Contains(err.Error(), "defaults") {
		t.Fatalf("%v", err)
	}
}

func TestOlderRecordIsMigrated(t *testing.T) {
	c := openCatalog(t, filepath.Join(t.TempDir(), "catalog.db"))
	// A record from "version 1" of a build whose version 2 renamed
	// "night" (a bool) to night_mode, and version 3 turned quality
	// presets into bitrates.
	old := `{"version":1,"values":{"night":true,"quality":"low","mute":true}}`
	put(t, c, "settings", old)
	steps := []Migration{
		func(v map[string]json.RawMessage) error {
			if string(v["night"]) == "true" {
				v["night_mode"] = json.RawMessage(`"night"`)
			}
			delete(v, "night")
			return nil
		},
		func(v map[string]json.RawMessage) error {
			rates := map[string]string{`"low"`: "500000", `"high"`: "4000000"}
			if r, ok := rates[string(v["quality"])]; ok {
				v["bitrate"] = json.RawMessage(r)
			}
			delete(v, "quality")
			return nil
		},
	}
	s, err := Open(c, Options{version: 3, migrations: steps, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if g := s.Get(); g.NightMode != "night" || g.Bitrate != 500_000 || !g.Mute {
		t.Fatalf("migrated: %+v", g)
	}
	if got := raw(t, c, "settings"); got != `{"version":3,"values":{"bitrate":500000,"mute":true,"night_mode":"night"}}` {
		t.Fatalf("stored %s", got)
	}
	if raw(t, c, "settings.v1") != old {
		t.Fatal("the original record was not kept")
	}
	// Opening again migrates nothing more.
	if s, _ = Open(c, Options{version: 3, migrations: steps}); s.Get().Bitrate != 500_000 {
		t.Fatal("second open")
	}

	// A migration that fails leaves the defaults in force and the
	// original kept.
	put(t, c, "settings", `{"version":2,"values":{"quality":"low"}}`)
	broken := []Migration{steps[0], func(map[string]json.RawMessage) error { return errors.New("boom") }}
	s, err = Open(c, Options{version: 3, migrations: broken})
	if err != nil || s.Get() != Defaults() {
		t.Fatalf("%v %+v", err, s.Get())
	}
	if raw(t, c, "settings.v2") != `{"version":2,"values":{"quality":"low"}}` {
		t.Fatal("the original of a failed migration was not kept")
	}
}

func TestNewerRecordKeepsWhatThisBuildDoesNotKnow(t *testing.T) {
	c := openCatalog(t, filepath.Join(t.TempDir(), "catalog.db"))
	// An update was rolled back: the record comes from a newer camd.
	put(t, c, "settings", `{"version":7,"values":{"mute":true,"hdr":"on","fps":12}}`)
	s, err := Open(c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if g := s.Get(); !g.Mute || g.FPS != 12 {
		t.Fatalf("%+v", g)
	}
	if _, err := patch(t, s, `{"fps": 20}`); err != nil {
		t.Fatal(err)
	}
	if got := raw(t, c, "settings"); got != `{"version":7,"values":{"fps":20,"hdr":"on","mute":true}}` {
		t.Fatalf("stored %s", got)
	}
}

func TestUnreadableRecordIsKeptAside(t *testing.T) {
	c := openCatalog(t, filepath.Join(t.TempDir(), "catalog.db"))
	put(t, c, "settings", `{"version":1,"values":{"mute":tru`)
	s, err := Open(c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Get() != Defaults() {
		t.Fatal(s.Get())
	}
	var aside []string
	c.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(storage.BucketSettings).ForEach(func(k, v []byte) error {
			if strings.HasPrefix(string(k), "settings.unreadable-") && string(v) == `{"version":1,"values":{"mute":tru` {
				aside = append(aside, string(k))
			}
			return nil
		})
	})
	if len(aside) != 1 || raw(t, c, "settings") != "" {
		t.Fatalf("kept aside: %v", aside)
	}
}

func TestStoredValueNoLongerAllowedIsSkippedNotLost(t *testing.T) {
	c := openCatalog(t, filepath.Join(t.TempDir(), "catalog.db"))
	put(t, c, "settings", `{"version":1,"values":{"bitrate":8000000,"mute":true,"fps":"fast"}}`)
	s, err := Open(c, Options{Limits: Limits{MaxBitrate: 4_000_000}})
	if err != nil {
		t.Fatal(err)
	}
	if g := s.Get(); g.Bitrate != Defaults().Bitrate || !g.Mute || g.FPS != 30 {
		t.Fatalf("%+v", g)
	}
	// The device's limit goes back up (a firmware with a better
	// encoder): the owner's choice returns.
	s, _ = Open(c, Options{})
	if s.Get().Bitrate != 8_000_000 {
		t.Fatal(s.Get().Bitrate)
	}
}

func TestChanged(t *testing.T) {
	a := Defaults()
	b := a
	b.Mute, b.Resolution = true, "640x480"
	if got := strings.Join(Changed(a, b), ","); got != "mute,resolution" {
		t.Fatal(got)
	}
}

func FuzzPatch(f *testing.F) {
	f.Add(`{"name":"x","fps":5}`)
	f.Add(`{"resolution":"2x2","bitrate":1e9}`)
	f.Add(`{"time_zone":"../../etc/passwd"}`)
	f.Add(`{"mute":null,"flip":true}`)
	c, err := storage.OpenCatalog(filepath.Join(f.TempDir(), "catalog.db"), storage.CatalogOptions{})
	if err != nil {
		f.Fatal(err)
	}
	defer c.Close()
	s, _ := Open(c, Options{})
	f.Fuzz(func(t *testing.T, js string) {
		var p map[string]json.RawMessage
		if json.Unmarshal([]byte(js), &p) != nil {
			return
		}
		_, after, err := s.Patch(p)
		if verr := after.Validate(Limits{}); verr != nil {
			t.Fatalf("patch %s left invalid settings: %v (patch error %v)", js, verr, err)
		}
	})
}

// crash_reports may be send only when the configuration names a
// collector; never and ask always.
func TestCrashReportsSendNeedsACollector(t *testing.T) {
	c := openCatalog(t, filepath.Join(t.TempDir(), "catalog.db"))
	s, _ := Open(c, Options{})
	if s.Get().CrashReports != "ask" {
		t.Fatalf("default %q", s.Get().CrashReports)
	}
	_, err := patch(t, s, `{"crash_reports": "send"}`)
	var fe *fielderr.Error
	if !errors.As(err, &fe) || fe.Field != "crash_reports" || !strings.Contains(fe.Allowed, "no crash_reports_url") {
		t.Fatalf("send without a collector: %v", err)
	}
	for _, v := range []string{"never", "ask"} {
		if g, err := patch(t, s, `{"crash_reports": "`+v+`"}`); err != nil || g.CrashReports != v {
			t.Fatalf("%s: %v %+v", v, err, g)
		}
	}
	s, _ = Open(c, Options{Limits: Limits{CrashCollector: true}})
	if g, err := patch(t, s, `{"crash_reports": "send"}`); err != nil || g.CrashReports != "send" {
		t.Fatalf("send with a collector: %v %+v", err, g)
	}
	if _, err := patch(t, s, `{"crash_reports": "always"}`); !errors.Is(err, ErrInvalid) {
		t.Fatalf("always: %v", err)
	}
}
