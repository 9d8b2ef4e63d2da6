package board

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/camd-project/camd/internal/fielderr"
)

// Profile maps a board's parts to its pins. It is read from YAML (see
// profiles/*.yaml and docs/porting.md); a part the board lacks is left
// out.
type Profile struct {
	// Name names the board (default: the file's base name).
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	// Debounce is how long an input must hold a level before it counts
	// (default 30 ms, 1 ms to 500 ms).
	Debounce   time.Duration `yaml:"debounce"`
	IRCut      *IRCutPins    `yaml:"ircut"`
	IRLED      *Pin          `yaml:"ir_led"`
	StatusLED  *Pin          `yaml:"status_led"`
	PairButton *Pin          `yaml:"pair_button"`
	Doorbell   *Pin          `yaml:"doorbell"`
	PIR        *Pin          `yaml:"pir"`
	Light      *LightPins    `yaml:"light"`
	// Chime drives a mechanical chime's relay, pulsed once when a call
	// rings (docs/calls.md).
	Chime *ChimePin `yaml:"chime"`
	// Speaker is where a call's phone audio and the ring-back tone play.
	Speaker *SpeakerOut `yaml:"speaker"`
}

// SpeakerOut names the speaker's sound device.
type SpeakerOut struct {
	// ALSA is the playback PCM ("default", "hw:0,0"; board/alsa).
	ALSA string `yaml:"alsa"`
}

// ChimePin is the output that strikes a mechanical chime: held active for
// Pulse (default 250 ms, 50 ms to 2 s), as its solenoid expects.
type ChimePin struct {
	Pin       string        `yaml:"pin"`
	ActiveLow bool          `yaml:"active_low"`
	Pulse     time.Duration `yaml:"pulse"`
}

// DefaultChimePulse is how long the chime's output is held by default.
const DefaultChimePulse = 250 * time.Millisecond

// Pin is one GPIO line.
type Pin struct {
	// Pin names the line: a periph.io name ("GPIO17"), or
	// "gpiochipN/OFFSET" or "gpiochipN/LINE-NAME" on the GPIO character
	// device.
	Pin string `yaml:"pin"`
	// ActiveLow means the part is active (LED lit, button pressed) when
	// the line is low.
	ActiveLow bool `yaml:"active_low"`
	// Pull is the input's bias: up, down or none (default: leave as is).
	Pull string `yaml:"pull"`
}

// IRCutPins drive the IR-cut filter: either two coil pins, each pulsed to
// move the filter one way (the usual H-bridge), or one level pin.
type IRCutPins struct {
	// Day and Night are the coil pins pulsed to move the filter in (day)
	// or out (night).
	Day   string `yaml:"day"`
	Night string `yaml:"night"`
	// Pin is a single level pin instead: active means night.
	Pin       string `yaml:"pin"`
	ActiveLow bool   `yaml:"active_low"`
	// Pulse is how long a coil is driven (default 150 ms, 10 ms to 2 s).
	Pulse time.Duration `yaml:"pulse"`
}

// LightPins name the light sensor: a photo switch on a GPIO (active
// means light) or an ADC read through Linux IIO.
type LightPins struct {
	Pin       string `yaml:"pin"`
	ActiveLow bool   `yaml:"active_low"`
	Pull      string `yaml:"pull"`
	// IIO is the sysfs file of the ADC channel, e.g.
	// /sys/bus/iio/devices/iio:device0/in_voltage0_raw.
	IIO string `yaml:"iio"`
	// Dark and Bright are the raw ADC readings in darkness and in
	// daylight; Dark may be the larger (a photoresistor to ground).
	Dark   int `yaml:"dark"`
	Bright int `yaml:"bright"`
}

// Default timings.
const (
	DefaultDebounce = 30 * time.Millisecond
	DefaultPulse    = 150 * time.Millisecond
)

// ProfileError is a value of profile that is not allowed: a
// *fielderr.Error that is ErrProfile, with cause (ErrNoPin, a driver's
// error) when there is one.
func ProfileError(profile, field, value, allowed string, cause error) error {
	return &fielderr.Error{Scope: "board: profile " + profile, Field: field, Value: value, Allowed: allowed, Kind: ErrProfile, Err: cause}
}

//go:embed profiles/*.yaml
var builtin embed.FS

// Profiles lists the built-in profiles by name.
func Profiles() []string {
	entries, _ := builtin.ReadDir("profiles")
	var names []string
	for _, e := range entries {
		names = append(names, strings.TrimSuffix(e.Name(), ".yaml"))
	}
	return names
}

// IsProfilePath reports whether s names a profile file rather than a
// built-in profile.
func IsProfilePath(s string) bool {
	return strings.ContainsRune(s, '/') || strings.HasSuffix(s, ".yaml") || strings.HasSuffix(s, ".yml")
}

// LoadProfile reads a built-in profile by name ("rpi") or a profile file
// by path, and checks it.
func LoadProfile(nameOrPath string) (*Profile, error) {
	var (
		b    []byte
		err  error
		name = strings.TrimSuffix(strings.TrimSuffix(filepath.Base(nameOrPath), ".yaml"), ".yml")
	)
	if IsProfilePath(nameOrPath) {
		b, err = os.ReadFile(nameOrPath)
	} else {
		b, err = builtin.ReadFile(path.Join("profiles", nameOrPath+".yaml"))
		if errors.Is(err, os.ErrNotExist) {
			return nil, ProfileError(nameOrPath, "board", fmt.Sprintf("%q", nameOrPath),
				"sim, "+strings.Join(Profiles(), ", ")+", or the path of a YAML profile", nil)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrProfile, err)
	}
	return ParseProfile(bytes.NewReader(b), name)
}

var unknownField = regexp.MustCompile(`field (\S+) not found in type board\.(\S+)`)

// ParseProfile reads a profile from YAML and checks it; name is used
// when the profile names no board, and in errors.
func ParseProfile(r io.Reader, name string) (*Profile, error) {
	var p Profile
	d := yaml.NewDecoder(r)
	d.KnownFields(true)
	if err := d.Decode(&p); err != nil && !errors.Is(err, io.EOF) {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		msg = strings.TrimPrefix(msg, "unmarshal errors:\n  ")
		msg = unknownField.ReplaceAllString(msg, "unknown field $1 (allowed: see docs/porting.md)")
		return nil, fmt.Errorf("%w %s: %s", ErrProfile, name, msg)
	}
	if p.Name == "" {
		p.Name = name
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &p, nil
}

// PinUse is one pin a profile uses, with the field that names it.
type PinUse struct {
	Field string
	Pin   string
}

// Pins lists the pins the profile uses, in a fixed order.
func (p *Profile) Pins() []PinUse {
	var u []PinUse
	add := func(field, pin string) {
		if pin != "" {
			u = append(u, PinUse{field, pin})
		}
	}
	if c := p.IRCut; c != nil {
		add("ircut.day", c.Day)
		add("ircut.night", c.Night)
		add("ircut.pin", c.Pin)
	}
	for _, x := range []struct {
		field string
		pin   *Pin
	}{{"ir_led", p.IRLED}, {"status_led", p.StatusLED}, {"pair_button", p.PairButton}, {"doorbell", p.Doorbell}, {"pir", p.PIR}} {
		if x.pin != nil {
			add(x.field+".pin", x.pin.Pin)
		}
	}
	if l := p.Light; l != nil {
		add("light.pin", l.Pin)
	}
	if c := p.Chime; c != nil {
		add("chime.pin", c.Pin)
	}
	return u
}

// Validate checks the profile and fills in defaults: every part names
// its pins, no pin is used twice, timings are in range.
func (p *Profile) Validate() error {
	bad := func(field, value, allowed string) error {
		return ProfileError(p.Name, field, value, allowed, nil)
	}
	if p.Debounce == 0 {
		p.Debounce = DefaultDebounce
	}
	if p.Debounce < time.Millisecond || p.Debounce > 500*time.Millisecond {
		return bad("debounce", p.Debounce.String(), "1ms to 500ms")
	}
	if c := p.IRCut; c != nil {
		pair := c.Day != "" || c.Night != ""
		switch {
		case pair && c.Pin != "":
			return bad("ircut", "day/night and pin", "either day and night (two pulsed coil pins) or pin (one level pin)")
		case pair && (c.Day == "" || c.Night == ""):
			return bad("ircut", fmt.Sprintf("day %q, night %q", c.Day, c.Night), "both day and night pins")
		case !pair && c.Pin == "":
			return bad("ircut", "no pins", "day and night (two pulsed coil pins) or pin (one level pin)")
		}
		if c.Pulse == 0 {
			c.Pulse = DefaultPulse
		}
		if c.Pulse < 10*time.Millisecond || c.Pulse > 2*time.Second {
			return bad("ircut.pulse", c.Pulse.String(), "10ms to 2s")
		}
	}
	for _, x := range []struct {
		field string
		pin   *Pin
	}{{"ir_led", p.IRLED}, {"status_led", p.StatusLED}, {"pair_button", p.PairButton}, {"doorbell", p.Doorbell}, {"pir", p.PIR}} {
		if x.pin == nil {
			continue
		}
		if x.pin.Pin == "" {
			return bad(x.field+".pin", `""`, "a pin name such as GPIO17 or gpiochip0/17")
		}
		if err := checkPull(x.pin.Pull); err != nil {
			return bad(x.field+".pull", fmt.Sprintf("%q", x.pin.Pull), err.Error())
		}
	}
	if c := p.Chime; c != nil {
		if c.Pin == "" {
			return bad("chime.pin", `""`, "a pin name such as GPIO26 or gpiochip0/17")
		}
		if c.Pulse == 0 {
			c.Pulse = DefaultChimePulse
		}
		if c.Pulse < 50*time.Millisecond || c.Pulse > 2*time.Second {
			return bad("chime.pulse", c.Pulse.String(), "50ms to 2s")
		}
	}
	if l := p.Light; l != nil {
		switch {
		case l.Pin != "" && l.IIO != "":
			return bad("light", "pin and iio", "either pin (a photo switch) or iio (an ADC)")
		case l.Pin == "" && l.IIO == "":
			return bad("light", "no input", "pin (a photo switch) or iio (an ADC)")
		case l.IIO != "" && l.Dark == l.Bright:
			return bad("light.dark/bright", fmt.Sprintf("%d/%d", l.Dark, l.Bright), "two different raw readings")
		}
		if err := checkPull(l.Pull); err != nil {
			return bad("light.pull", fmt.Sprintf("%q", l.Pull), err.Error())
		}
	}
	seen := map[string]string{}
	for _, u := range p.Pins() {
		key := strings.ToLower(u.Pin)
		if first, ok := seen[key]; ok {
			return bad(u.Field, fmt.Sprintf("%q", u.Pin), "a pin no other part uses ("+first+" uses it)")
		}
		seen[key] = u.Field
	}
	return nil
}

func checkPull(s string) error {
	if slices.Contains([]string{"", "up", "down", "none"}, s) {
		return nil
	}
	return errors.New("up, down, none")
}
