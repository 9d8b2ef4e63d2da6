package board

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestBuiltinProfilesLoad(t *testing.T) {
	names := Profiles()
	if strings.Join(names, ",") != "gpiochip,rpi" {
		t.Fatalf("built-in profiles: %v", names)
	}
	for _, n := range names {
		p, err := LoadProfile(n)
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		if p.Name != n || p.IRCut == nil || p.PairButton == nil || p.StatusLED == nil || p.Light == nil {
			t.Errorf("%s: incomplete: %+v", n, p)
		}
		if p.IRCut.Pulse != 150*time.Millisecond || p.Debounce != 30*time.Millisecond {
			t.Errorf("%s: timings %v %v", n, p.IRCut.Pulse, p.Debounce)
		}
	}
	rpi, _ := LoadProfile("rpi")
	if rpi.PairButton.Pin != "GPIO24" || !rpi.PairButton.ActiveLow || rpi.PairButton.Pull != "up" {
		t.Errorf("rpi pair button: %+v", rpi.PairButton)
	}
}

func TestProfileFromFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "porch-cam.yaml")
	os.WriteFile(path, []byte("status_led: {pin: GPIO4}\nir_led: {pin: GPIO5, active_low: true}\n"), 0o644)
	p, err := LoadProfile(path)
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "porch-cam" || p.StatusLED.Pin != "GPIO4" || !p.IRLED.ActiveLow || p.IRCut != nil {
		t.Fatalf("%+v", p)
	}
	if got := p.Pins(); len(got) != 2 || got[0] != (PinUse{"ir_led.pin", "GPIO5"}) {
		t.Fatalf("pins: %v", got)
	}
}

func TestBadProfileNamesFieldValueAndAllowed(t *testing.T) {
	cases := []struct {
		name, yaml string
		want       []string
	}{
		{"pin used twice", "status_led: {pin: GPIO4}\nir_led: {pin: GPIO4}",
			[]string{"status_led.pin", `"GPIO4"`, "ir_led.pin uses it"}},
		{"pin used twice, other case", "pir: {pin: gpio4}\ndoorbell: {pin: GPIO4}",
			[]string{"pir.pin", "doorbell.pin uses it"}},
		{"ircut coil shared with a button", "ircut: {day: GPIO1, night: GPIO2}\npair_button: {pin: GPIO2}",
			[]string{"pair_button.pin", "ircut.night uses it"}},
		{"empty pin", "doorbell: {active_low: true}", []string{"doorbell.pin", `""`, "GPIO17 or gpiochip0/17"}},
		{"bad pull", "pir: {pin: GPIO5, pull: sideways}", []string{"pir.pull", "sideways", "up, down, none"}},
		{"half an ircut", "ircut: {day: GPIO1}", []string{"ircut", "both day and night"}},
		{"ircut both kinds", "ircut: {day: GPIO1, night: GPIO2, pin: GPIO3}", []string{"ircut", "either day and night"}},
		{"ircut pulse", "ircut: {pin: GPIO1, pulse: 5s}", []string{"ircut.pulse", "5s", "10ms to 2s"}},
		{"light with both", "light: {pin: GPIO1, iio: /sys/x}", []string{"light", "either pin"}},
		{"light adc range", "light: {iio: /sys/x, dark: 5, bright: 5}", []string{"light.dark/bright", "5/5"}},
		{"debounce", "debounce: 2s", []string{"debounce", "2s", "1ms to 500ms"}},
		{"unknown part", "ir_leds: {pin: GPIO1}", []string{"ir_leds", "unknown field"}},
		{"wrong type", "debounce: soon", []string{"soon"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseProfile(strings.NewReader(c.yaml), "test")
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, ErrProfile) {
				t.Errorf("%v is not ErrProfile", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestUnknownBuiltinProfile(t *testing.T) {
	_, err := LoadProfile("raspberry")
	if !errors.Is(err, ErrProfile) || !strings.Contains(err.Error(), "sim, gpiochip, rpi, or the path") {
		t.Fatalf("%v", err)
	}
	if _, err := LoadProfile("/nonexistent/board.yaml"); !errors.Is(err, ErrProfile) {
		t.Fatalf("missing file: %v", err)
	}
}

func FuzzParseProfile(f *testing.F) {
	for _, n := range Profiles() {
		b, _ := builtin.ReadFile("profiles/" + n + ".yaml")
		f.Add(string(b))
	}
	f.Add("ircut: {pin: x}\nlight: {iio: a, dark: 1, bright: 2}")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseProfile(strings.NewReader(s), "fuzz")
		if err != nil {
			return
		}
		// A profile that parses never uses a pin twice.
		seen := map[string]bool{}
		for _, u := range p.Pins() {
			k := strings.ToLower(u.Pin)
			if seen[k] {
				t.Fatalf("pin %q used twice in accepted profile", u.Pin)
			}
			seen[k] = true
		}
	})
}
