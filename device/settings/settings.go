package settings

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/camd-project/camd/internal/fielderr"
)

// Settings are what the owner changes from the phone. The JSON names are
// the keys of GET/PATCH /api/v1/settings and `camctl settings`.
type Settings struct {
	// Name is the camera's friendly name (1 to 63 characters, none of
	// them a control or format character: Unicode Cc, Cf).
	Name string `json:"name"`
	// TimeZone is an IANA zone ("Europe/Paris", "UTC") for the clock in
	// the picture and the recordings' timeline.
	TimeZone string `json:"time_zone"`
	// AutoStart starts camd when the device boots (the init scripts
	// ask camd before starting it).
	AutoStart bool `json:"auto_start"`
	// Mute silences the microphone (the audio track stays, silent).
	Mute bool `json:"mute"`
	// Resolution is WIDTHxHEIGHT of the encoded video.
	Resolution string `json:"resolution"`
	// FPS is the encoded frame rate.
	FPS int `json:"fps"`
	// Bitrate is the video quality: the encoder's target and ceiling in
	// bits per second (viewers' bandwidth estimates may lower it).
	Bitrate int `json:"bitrate"`
	// Flip turns the picture upside down; Mirror swaps left and right
	// (both: a camera mounted on a ceiling).
	Flip   bool `json:"flip"`
	Mirror bool `json:"mirror"`
	// NightMode is auto (IR-cut and IR LEDs follow the light), day or
	// night.
	NightMode string `json:"night_mode"`
	// StatusLED turns the status LED's patterns on or off.
	StatusLED bool `json:"status_led"`
	// RecordingMode is continuous, motion or off.
	RecordingMode string `json:"recording_mode"`
	// MotionSensitivity is 1 (only large motion) to 100.
	MotionSensitivity int `json:"motion_sensitivity"`
	// SpeakerVolume is the speaker's volume, 0 (silent) to 100, for a
	// call's phone audio and the ring-back tone.
	SpeakerVolume int `json:"speaker_volume"`
	// UpdateCheck lets camd check the update feed daily (off by default:
	// each check tells the update server the camera's address;
	// docs/updates.md).
	UpdateCheck bool `json:"update_check"`
	// CrashReports is what happens to the report of a crash: never
	// (none is kept), ask (kept until the owner sends or deletes it) or
	// send (uploaded at once to the collector the configuration names:
	// crash_reports_url; docs/observability.md).
	CrashReports string `json:"crash_reports"`
	// WHIPURL is the WHIP endpoint (RFC 9725) of an SFU that camd
	// publishes its live stream to, so that the SFU serves the viewers
	// the camera could not; "" (the default) publishes nothing.
	WHIPURL string `json:"whip_url"`
	// WHIPToken is the bearer token sent to WHIPURL. It is write-only:
	// Redacted, what the API answers, leaves it out and says in
	// WHIPTokenSet whether one is set; errors and logs never quote it.
	WHIPToken string `json:"whip_token,omitempty"`
	// WHIPTokenSet is not a setting: Redacted sets it when a WHIPToken
	// is.
	WHIPTokenSet bool `json:"whip_token_set"`
	// WHIPPinSHA256 pins the certificate of an https:// WHIPURL by its
	// SHA-256 (64 hex digits, colons allowed): an SFU with a self-signed
	// certificate. "" (the default) checks it against the system's roots.
	WHIPPinSHA256 string `json:"whip_pin_sha256"`
	// CORSAllowedOrigins are the web origins ("https://ha.example:8123")
	// whose pages may call the viewer API from a browser, still with a
	// credential (docs/security.md). Default: the configuration's
	// cors.allowed_origins, none unless set there.
	CORSAllowedOrigins Origins `json:"cors_allowed_origins"`
}

// Origins is a list of web origins, a JSON array in the API. It is kept
// as one string so that Settings stay comparable and a copy shares
// nothing with the store.
type Origins string

// NewOrigins makes a list of origins. The origins are not checked
// (Validate does): none may contain a space.
func NewOrigins(list ...string) Origins { return Origins(strings.Join(list, " ")) }

// List returns the origins.
func (o Origins) List() []string { return strings.Fields(string(o)) }

// MarshalJSON writes the list as a JSON array.
func (o Origins) MarshalJSON() ([]byte, error) {
	list := o.List()
	if list == nil {
		list = []string{}
	}
	return json.Marshal(list)
}

// UnmarshalJSON reads a JSON array of strings; an empty origin or one
// with white space in it is kept as one that Validate refuses.
func (o *Origins) UnmarshalJSON(b []byte) error {
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return err
	}
	for i, s := range list {
		if s == "" || strings.ContainsFunc(s, unicode.IsSpace) {
			// One field that is never an origin (a URL has no NUL).
			list[i] = "\x00" + strings.Map(func(r rune) rune {
				if unicode.IsSpace(r) {
					return '_'
				}
				return r
			}, s)
		}
	}
	*o = NewOrigins(list...)
	return nil
}

// Redacted is s as the API shows it: without the WHIP token, and with
// WHIPTokenSet telling whether there is one.
func (s Settings) Redacted() Settings {
	s.WHIPTokenSet = s.WHIPToken != ""
	s.WHIPToken = ""
	return s
}

// Defaults are the settings of a new camera, before the device's
// configuration (its name, video size, frame rate and bitrate) is
// applied on top.
func Defaults() Settings {
	return Settings{
		Name:              "camd",
		TimeZone:          "UTC",
		AutoStart:         true,
		Resolution:        "1280x720",
		FPS:               30,
		Bitrate:           2_000_000,
		NightMode:         "auto",
		StatusLED:         true,
		RecordingMode:     "continuous",
		MotionSensitivity: 50,
		SpeakerVolume:     80,
		CrashReports:      "ask",
	}
}

// Size parses Resolution. It returns zeros for an invalid value (which
// Validate refuses).
func (s Settings) Size() (width, height int) {
	w, h, ok := strings.Cut(s.Resolution, "x")
	if !ok {
		return 0, 0
	}
	width, err1 := strconv.Atoi(w)
	height, err2 := strconv.Atoi(h)
	if err1 != nil || err2 != nil || w != strconv.Itoa(width) || h != strconv.Itoa(height) {
		return 0, 0
	}
	return width, height
}

// Location is the time zone, UTC if the name is unknown.
func (s Settings) Location() *time.Location {
	loc, err := time.LoadLocation(s.TimeZone)
	if err != nil {
		return time.UTC
	}
	return loc
}

// Limits are what this device allows beyond the fixed ranges. The zero
// value allows every bitrate from 50 kbps to 20 Mbps.
type Limits struct {
	// MinBitrate and MaxBitrate bound Bitrate (the configuration's
	// video.min_bitrate and video.max_bitrate).
	MinBitrate, MaxBitrate int
	// CrashCollector says the configuration names a collector
	// (crash_reports_url): without one, crash_reports may not be send.
	CrashCollector bool
}

func (l Limits) withDefaults() Limits {
	if l.MinBitrate <= 0 {
		l.MinBitrate = 50_000
	}
	if l.MaxBitrate <= 0 {
		l.MaxBitrate = 20_000_000
	}
	return l
}

// ErrInvalid marks every settings value that is not allowed.
var ErrInvalid = errors.New("settings: invalid")

// invalid is a setting that is not allowed: the key, the value given
// (as JSON) and what is allowed; a *fielderr.Error that is ErrInvalid.
func invalid(key, value, allowed string) error {
	return &fielderr.Error{Scope: "settings", Field: key, Value: value, Allowed: allowed, Kind: ErrInvalid}
}

// field describes one setting: its key, what is allowed, and a check of
// its value.
type field struct {
	key     string
	allowed string
	ok      func(s *Settings) bool
}

// secret reports whether a setting's value is a secret, never quoted in
// an error.
func secret(key string) bool { return key == "whip_token" }

// hidden stands for a secret's value in errors.
const hidden = `"(not shown)"`

// fields is every setting, in the order they are checked and listed.
func fields(l Limits) []field {
	l = l.withDefaults()
	oneOf := func(v string, allowed ...string) bool {
		for _, a := range allowed {
			if v == a {
				return true
			}
		}
		return false
	}
	always := func(*Settings) bool { return true }
	return []field{
		{"name", NameRule, func(s *Settings) bool { return NameAllowed(s.Name) }},
		{"time_zone", `an IANA time zone such as "UTC" or "Europe/Paris"`, func(s *Settings) bool {
			if s.TimeZone == "" || s.TimeZone == "Local" {
				return false
			}
			_, err := time.LoadLocation(s.TimeZone)
			return err == nil
		}},
		{"auto_start", "true or false", always},
		{"mute", "true or false", always},
		{"resolution", `"WIDTHxHEIGHT", even numbers, 16x16 to 3840x2160, e.g. "1280x720"`, func(s *Settings) bool {
			w, h := s.Size()
			return w >= 16 && w <= 3840 && h >= 16 && h <= 2160 && w%2 == 0 && h%2 == 0
		}},
		{"fps", "a whole number from 1 to 60", func(s *Settings) bool { return s.FPS >= 1 && s.FPS <= 60 }},
		{"bitrate", fmt.Sprintf("a whole number of bits per second from %d to %d", l.MinBitrate, l.MaxBitrate),
			func(s *Settings) bool { return s.Bitrate >= l.MinBitrate && s.Bitrate <= l.MaxBitrate }},
		{"flip", "true or false", always},
		{"mirror", "true or false", always},
		{"night_mode", `"auto", "day" or "night"`, func(s *Settings) bool { return oneOf(s.NightMode, "auto", "day", "night") }},
		{"status_led", "true or false", always},
		{"recording_mode", `"continuous", "motion" or "off"`, func(s *Settings) bool {
			return oneOf(s.RecordingMode, "continuous", "motion", "off")
		}},
		{"motion_sensitivity", "a whole number from 1 to 100", func(s *Settings) bool {
			return s.MotionSensitivity >= 1 && s.MotionSensitivity <= 100
		}},
		{"speaker_volume", "a whole number from 0 to 100", func(s *Settings) bool {
			return s.SpeakerVolume >= 0 && s.SpeakerVolume <= 100
		}},
		{"update_check", "true or false", always},
		crashReports(l.CrashCollector, oneOf),
		{"whip_url", `"" (off) or the SFU's WHIP endpoint, an https:// (or http://) URL without user:password@, up to 2048 characters`,
			func(s *Settings) bool { return s.WHIPURL == "" || WHIPURLAllowed(s.WHIPURL) }},
		{"whip_token", `up to 4096 visible ASCII characters (no spaces), or ""`, func(s *Settings) bool { return tokenAllowed(s.WHIPToken) }},
		{"whip_pin_sha256", `"" or the SHA-256 of the SFU's certificate, 64 hex digits (colons allowed), with an https:// whip_url`, func(s *Settings) bool {
			_, ok := PinBytes(s.WHIPPinSHA256)
			return ok && (s.WHIPPinSHA256 == "" || !strings.HasPrefix(s.WHIPURL, "http://"))
		}},
		{"cors_allowed_origins", fmt.Sprintf("a list of up to %d distinct origins as a browser sends them: scheme://host[:port], e.g. [\"https://ha.example:8123\"]", maxOrigins),
			func(s *Settings) bool { return OriginsAllowed(s.CORSAllowedOrigins.List()) }},
	}
}

// crashReports is the crash_reports field: send only with a collector.
func crashReports(collector bool, oneOf func(string, ...string) bool) field {
	if !collector {
		return field{"crash_reports", `"never" or "ask" (no crash_reports_url is configured to send to)`,
			func(s *Settings) bool { return oneOf(s.CrashReports, "never", "ask") }}
	}
	return field{"crash_reports", `"never", "ask" or "send"`,
		func(s *Settings) bool { return oneOf(s.CrashReports, "never", "ask", "send") }}
}

// maxOrigins bounds cors_allowed_origins.
const maxOrigins = 32

// WHIPURLAllowed reports whether u may be a WHIP endpoint: an http or
// https URL with a host, no user information and no fragment, of at most
// 2048 characters.
func WHIPURLAllowed(u string) bool {
	p, err := url.Parse(u)
	return err == nil && len(u) <= 2048 && (p.Scheme == "https" || p.Scheme == "http") && p.Host != "" &&
		p.User == nil && p.Fragment == "" && !strings.ContainsFunc(u, func(r rune) bool { return r <= ' ' || r == 0x7f })
}

// PinBytes reads a certificate pin: 64 hex digits, colons allowed
// between them; "" is no pin (nil, true).
func PinBytes(pin string) ([]byte, bool) {
	if pin == "" {
		return nil, true
	}
	b, err := hex.DecodeString(strings.ReplaceAll(pin, ":", ""))
	return b, err == nil && len(b) == 32
}

// tokenAllowed: a bearer token fits in one header line (RFC 6750's
// token68 and more: any visible ASCII).
func tokenAllowed(t string) bool {
	return len(t) <= 4096 && !strings.ContainsFunc(t, func(r rune) bool { return r <= ' ' || r > '~' })
}

// OriginAllowed reports whether o is a web origin as a browser sends it
// in an Origin header: scheme://host[:port] and nothing else.
func OriginAllowed(o string) bool {
	u, err := url.Parse(o)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" &&
		u.User == nil && u.Path == "" && u.RawQuery == "" && u.Fragment == "" && u.String() == o
}

// OriginsAllowed reports whether a list of origins may be
// cors_allowed_origins: at most 32, each allowed, none twice.
func OriginsAllowed(origins []string) bool {
	if len(origins) > maxOrigins {
		return false
	}
	for i, o := range origins {
		if !OriginAllowed(o) || slices.Contains(origins[:i], o) {
			return false
		}
	}
	return true
}

// Keys lists every setting's key.
func Keys() []string {
	var keys []string
	for _, f := range fields(Limits{}) {
		keys = append(keys, f.key)
	}
	return keys
}

// Validate returns the first setting that is not allowed.
func (s Settings) Validate(l Limits) error {
	for _, f := range fields(l) {
		if !f.ok(&s) {
			v := hidden
			if !secret(f.key) {
				v = s.value(f.key)
			}
			return invalid(f.key, v, f.allowed)
		}
	}
	return nil
}

// ptr returns the Go field behind a key, or an invalid Value.
func (s *Settings) ptr(key string) reflect.Value {
	v := reflect.ValueOf(s).Elem()
	t := v.Type()
	for i := range t.NumField() {
		if name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ","); name == key {
			return v.Field(i)
		}
	}
	return reflect.Value{}
}

// controlOrFormat reports whether r is a control (Cc: C0, DEL, C1) or
// format character (Cf: bidi overrides and isolates, zero-width
// characters, tags): one that could make a name show as another, or act
// on a terminal.
func controlOrFormat(r rune) bool { return unicode.In(r, unicode.Cc, unicode.Cf) }

// NameRule is what the camera's name may be: the name setting, and the
// name of the configuration file it defaults to.
const NameRule = "text of 1 to 63 characters, no control characters (Unicode Cc) or format characters (Cf, such as bidi overrides)"

// NameAllowed reports whether name follows NameRule.
func NameAllowed(name string) bool {
	return name != "" && len(name) <= 63 && utf8.ValidString(name) && !strings.ContainsFunc(name, controlOrFormat)
}

// value is the JSON of one setting, with every control or format
// character escaped (\uXXXX), so that an error that quotes a refused
// value carries none of them raw.
func (s Settings) value(key string) string {
	f := s.ptr(key)
	if !f.IsValid() {
		return ""
	}
	b, _ := json.Marshal(f.Interface())
	if !strings.ContainsFunc(string(b), controlOrFormat) {
		return string(b)
	}
	var out strings.Builder
	for _, r := range string(b) {
		if !controlOrFormat(r) {
			out.WriteRune(r)
			continue
		}
		// Outside a JSON string only white space, which Marshal does
		// not emit: r is inside one.
		for _, u := range utf16.AppendRune(nil, r) {
			fmt.Fprintf(&out, `\u%04x`, u)
		}
	}
	return out.String()
}

// set decodes one JSON value into the setting called key, refusing an
// unknown key or a value of the wrong type.
func (s *Settings) set(key string, raw json.RawMessage, l Limits) error {
	f := s.ptr(key)
	var spec *field
	for _, x := range fields(l) {
		if x.key == key {
			spec = &x
			break
		}
	}
	if !f.IsValid() || spec == nil {
		return invalid(key, short(raw), "a known setting: "+strings.Join(Keys(), ", "))
	}
	v := reflect.New(f.Type())
	if err := json.Unmarshal(raw, v.Interface()); err != nil {
		shown := short(raw)
		if secret(key) {
			shown = hidden
		}
		return invalid(key, shown, spec.allowed)
	}
	f.Set(v.Elem())
	return nil
}

// short quotes a value for an error message, cut to a readable length.
func short(raw json.RawMessage) string {
	s := strings.TrimSpace(string(raw))
	if s == "" {
		return `""`
	}
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return s
}

// Changed lists the keys whose values differ between a and b.
func Changed(a, b Settings) []string {
	var keys []string
	for _, k := range Keys() {
		if a.value(k) != b.value(k) {
			keys = append(keys, k)
		}
	}
	return keys
}
