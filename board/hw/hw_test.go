package hw_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"

	"github.com/camd-project/camd/board"
	"github.com/camd-project/camd/board/hw"
)

// fakeHost is a board with the named gpiotest pins.
type fakeHost map[string]gpio.PinIO

func newFakeHost(names ...string) fakeHost {
	h := fakeHost{}
	for i, n := range names {
		h[n] = &gpiotest.Pin{N: n, Num: i, EdgesChan: make(chan gpio.Level, 8)}
	}
	return h
}

func (h fakeHost) options() hw.Options {
	return hw.Options{
		Lookup: func(name string) (gpio.PinIO, error) { return h[name], nil },
		Names:  func() []string { return []string{"GPIO1", "GPIO2", "GPIO3"} },
	}
}

func (h fakeHost) level(name string) gpio.Level { return h[name].Read() }

func profile(t *testing.T, yaml string) *board.Profile {
	t.Helper()
	p, err := board.ParseProfile(strings.NewReader(yaml), "test")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestOpenAppliesPolarityAndBias(t *testing.T) {
	h := newFakeHost("GPIO1", "GPIO2", "GPIO3", "GPIO4")
	b, err := hw.Open(profile(t, `
status_led: {pin: GPIO1, active_low: true}
ir_led: {pin: GPIO2}
pair_button: {pin: GPIO3, active_low: true, pull: up}
pir: {pin: GPIO4, pull: down}
`), h.options())
	if err != nil {
		t.Fatal(err)
	}
	// Outputs start off: an active-low LED's pin is high.
	if h.level("GPIO1") != gpio.High || h.level("GPIO2") != gpio.Low {
		t.Fatal("outputs not off at open")
	}
	b.StatusLED.Set(true)
	b.IRLED.Set(true)
	if h.level("GPIO1") != gpio.Low || h.level("GPIO2") != gpio.High {
		t.Fatal("polarity not applied")
	}
	if h["GPIO3"].Pull() != gpio.PullUp || h["GPIO4"].Pull() != gpio.PullDown {
		t.Fatal("bias not applied")
	}
	if b.PairButton.Active() || b.PIR.Active() {
		t.Fatal("inputs active at rest")
	}
	h["GPIO3"].Out(gpio.Low) // button pressed
	if !b.PairButton.Active() {
		t.Fatal("active-low button not pressed at low level")
	}
	if b.IRCut != nil || b.Doorbell != nil || b.Light != nil {
		t.Fatal("parts the profile lacks are not nil")
	}
	b.Close()
	if h.level("GPIO1") != gpio.High || h.level("GPIO2") != gpio.Low {
		t.Fatal("outputs not off after Close")
	}
}

func TestOpenRefusesMissingAndSharedPins(t *testing.T) {
	h := newFakeHost("GPIO1", "GPIO2")
	h["LED"] = h["GPIO1"] // an alias: another name for the same line
	opts := h.options()

	_, err := hw.Open(profile(t, "status_led: {pin: GPIO1}\nir_led: {pin: GPIO9}"), opts)
	if !errors.Is(err, board.ErrNoPin) || !errors.Is(err, board.ErrProfile) {
		t.Fatalf("missing pin: %v", err)
	}
	for _, w := range []string{"ir_led.pin", `"GPIO9"`, "GPIO1, GPIO2, GPIO3"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %q", err, w)
		}
	}
	// The LED opened before the error is turned off again.
	if h.level("GPIO1") != gpio.Low {
		t.Fatal("pin left driven after a failed open")
	}

	_, err = hw.Open(profile(t, "status_led: {pin: LED}\nir_led: {pin: GPIO1}"), opts)
	if !errors.Is(err, board.ErrProfile) || !strings.Contains(err.Error(), "ir_led.pin uses GPIO1") {
		t.Fatalf("alias of a used pin: %v", err)
	}

	_, err = hw.Open(profile(t, "status_led: {pin: GPIO1}"), hw.Options{
		Lookup: func(string) (gpio.PinIO, error) { return nil, errors.New("periph: no GPIO driver") },
	})
	if !errors.Is(err, board.ErrProfile) || !strings.Contains(err.Error(), "no GPIO driver") {
		t.Fatalf("lookup failure: %v", err)
	}
}

func TestIRCutKinds(t *testing.T) {
	h := newFakeHost("GPIO1", "GPIO2", "GPIO3")
	opts := h.options()
	b, err := hw.Open(profile(t, "ircut: {day: GPIO1, night: GPIO2, pulse: 50ms}"), opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := b.IRCut.(*board.PulsedIRCut); !ok {
		t.Fatalf("two pins: %T", b.IRCut)
	}
	b, err = hw.Open(profile(t, "ircut: {pin: GPIO3, active_low: true}"), opts)
	if err != nil {
		t.Fatal(err)
	}
	b.IRCut.SetNight(true)
	if h.level("GPIO3") != gpio.Low {
		t.Fatal("level IR-cut: night not active (low)")
	}
}

// edgeless is a line without edge detection.
type edgeless struct{ *gpiotest.Pin }

func (p edgeless) In(pull gpio.Pull, edge gpio.Edge) error {
	if edge != gpio.NoEdge {
		return errors.New("edge detection not supported")
	}
	return p.Pin.In(pull, edge)
}

// TestInputWithoutEdgesIsPolled runs in a synctest bubble: the polling
// sleeps on the bubble's clock, so the test sees exactly when a change is
// noticed.
func TestInputWithoutEdgesIsPolled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pin := &gpiotest.Pin{N: "GPIO1"}
		b, err := hw.Open(profile(t, "doorbell: {pin: GPIO1}"), hw.Options{
			Lookup: func(string) (gpio.PinIO, error) { return edgeless{pin}, nil },
			Poll:   10 * time.Millisecond,
		})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if b.Doorbell.WaitForEdge(50 * time.Millisecond) {
			t.Fatal("edge reported without a change")
		}
		if waited := time.Since(start); waited != 50*time.Millisecond {
			t.Fatalf("waited %v for no change, want the 50 ms timeout", waited)
		}
		go func() {
			time.Sleep(25 * time.Millisecond)
			pin.Out(gpio.High)
		}()
		start = time.Now()
		if !b.Doorbell.WaitForEdge(time.Hour) || !b.Doorbell.Active() {
			t.Fatal("polled change not seen")
		}
		// Read every 10 ms: the change at 25 ms is seen at 30 ms.
		if seen := time.Since(start); seen != 30*time.Millisecond {
			t.Fatalf("change seen after %v, want 30 ms", seen)
		}
	})
}

// TestInputWaitsForEdgesInABubble checks that an input with edge
// detection waits on the bubble's clock: periph's gpiotest.Pin (with no
// Clock set) selects on its EdgesChan and time.After, so a pin made in the
// bubble times out on fake time and wakes on an edge at once.
func TestInputWaitsForEdgesInABubble(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newFakeHost("GPIO1")
		b, err := hw.Open(profile(t, "pir: {pin: GPIO1}"), h.options())
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if b.PIR.WaitForEdge(time.Hour) {
			t.Fatal("edge reported without a change")
		}
		if waited := time.Since(start); waited != time.Hour {
			t.Fatalf("waited %v, want the hour of the timeout", waited)
		}
		go func() {
			time.Sleep(time.Second)
			h["GPIO1"].(*gpiotest.Pin).EdgesChan <- gpio.High
		}()
		start = time.Now()
		if !b.PIR.WaitForEdge(time.Hour) || !b.PIR.Active() {
			t.Fatal("edge not seen")
		}
		if waited := time.Since(start); waited != time.Second {
			t.Fatalf("edge seen after %v, want 1 s", waited)
		}
	})
}

func TestLightSensors(t *testing.T) {
	dir := t.TempDir()
	raw := filepath.Join(dir, "in_voltage0_raw")
	b, err := hw.Open(profile(t, "light: {iio: "+raw+", dark: 3800, bright: 400}"), newFakeHost().options())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		raw  string
		want float64
	}{{"3800\n", 0}, {"2100\n", 0.5}, {"400\n", 1}, {"100\n", 1}, {"4095\n", 0}} {
		os.WriteFile(raw, []byte(c.raw), 0o644)
		if got, err := b.Light.Light(); err != nil || got != c.want {
			t.Errorf("raw %q: %v %v, want %v", c.raw, got, err, c.want)
		}
	}
	os.WriteFile(raw, []byte("n/a\n"), 0o644)
	if _, err := b.Light.Light(); err == nil || !strings.Contains(err.Error(), `"n/a" is not a number`) {
		t.Errorf("garbage reading: %v", err)
	}
	os.Remove(raw)
	if _, err := b.Light.Light(); err == nil {
		t.Error("missing file read")
	}

	h := newFakeHost("GPIO6")
	b, err = hw.Open(profile(t, "light: {pin: GPIO6}"), h.options())
	if err != nil {
		t.Fatal(err)
	}
	if l, _ := b.Light.Light(); l != 0 {
		t.Fatalf("photo switch dark: %v", l)
	}
	h["GPIO6"].Out(gpio.High)
	if l, _ := b.Light.Light(); l != 1 {
		t.Fatalf("photo switch light: %v", l)
	}
}

func TestHostLookupOnThisMachine(t *testing.T) {
	// On a host without GPIO this finds nothing, and says so; it must not
	// fail or panic.
	p, err := hw.HostLookup("GPIO_THAT_DOES_NOT_EXIST")
	if err == nil && p != nil {
		t.Fatalf("found %v", p)
	}
	_, err = hw.Open(profile(t, "status_led: {pin: GPIO_THAT_DOES_NOT_EXIST}"), hw.Options{})
	if !errors.Is(err, board.ErrProfile) {
		t.Fatalf("%v", err)
	}
	t.Log(err)
}
