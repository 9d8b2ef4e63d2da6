package hw

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"periph.io/x/conn/v3/gpio"

	"github.com/camd-project/camd/board"
)

// Options configure Open. The zero value means defaults.
type Options struct {
	// Lookup finds a pin by the name a profile gives it; it returns nil,
	// nil for a pin that does not exist. The default asks periph.io's
	// host drivers (see HostLookup).
	Lookup func(name string) (gpio.PinIO, error)
	// Names lists the pins the board has, for error messages (default:
	// periph.io's registry, with the default Lookup).
	Names func() []string
	// Poll is how often an input without edge detection is read
	// (default 20 ms).
	Poll time.Duration
}

// Open maps the profile's parts to pins and configures them: outputs off,
// inputs with their bias and edge detection. A pin that does not exist,
// or that two parts share under different names, is an error naming the
// field.
func Open(p *board.Profile, opts Options) (*board.Board, error) {
	if opts.Lookup == nil {
		opts.Lookup, opts.Names = HostLookup, hostNames
	}
	if opts.Poll <= 0 {
		opts.Poll = 20 * time.Millisecond
	}
	o := &opener{p: p, opts: opts, pins: map[string]gpio.PinIO{}, users: map[gpio.PinIO]string{}}
	b, err := o.open()
	if err != nil {
		o.release()
		return nil, err
	}
	return b, nil
}

type opener struct {
	p     *board.Profile
	opts  Options
	pins  map[string]gpio.PinIO // by field
	users map[gpio.PinIO]string // field by pin
	outs  []*output
	ins   []*input
}

func (o *opener) open() (*board.Board, error) {
	for _, u := range o.p.Pins() {
		pin, err := o.opts.Lookup(u.Pin)
		if err != nil {
			return nil, board.ProfileError(o.p.Name, u.Field, strconv.Quote(u.Pin), "a pin this board has", err)
		}
		if pin == nil {
			return nil, board.ProfileError(o.p.Name, u.Field, strconv.Quote(u.Pin), o.known(), board.ErrNoPin)
		}
		key := realPin(pin)
		if first, ok := o.users[key]; ok {
			return nil, board.ProfileError(o.p.Name, u.Field, strconv.Quote(u.Pin),
				fmt.Sprintf("a pin no other part uses (%s uses %s)", first, pin.Name()), nil)
		}
		o.users[key] = u.Field
		o.pins[u.Field] = pin
	}

	b := &board.Board{Name: o.p.Name, Debounce: o.p.Debounce, Release: o.release}
	var err error
	if c := o.p.IRCut; c != nil {
		if c.Pin != "" {
			var out *output
			if out, err = o.output("ircut.pin", c.ActiveLow); err == nil {
				b.IRCut = board.LevelIRCut{Pin: out}
			}
		} else {
			var day, night *output
			if day, err = o.output("ircut.day", c.ActiveLow); err != nil {
				return nil, err
			}
			if night, err = o.output("ircut.night", c.ActiveLow); err == nil {
				b.IRCut = &board.PulsedIRCut{Day: day, Night: night, Pulse: c.Pulse}
			}
		}
		if err != nil {
			return nil, err
		}
	}
	if p := o.p.IRLED; p != nil {
		if b.IRLED, err = o.output("ir_led.pin", p.ActiveLow); err != nil {
			return nil, err
		}
	}
	if p := o.p.StatusLED; p != nil {
		if b.StatusLED, err = o.output("status_led.pin", p.ActiveLow); err != nil {
			return nil, err
		}
	}
	if p := o.p.Chime; p != nil {
		if b.Chime, err = o.output("chime.pin", p.ActiveLow); err != nil {
			return nil, err
		}
		b.ChimePulse = p.Pulse
	}
	for _, x := range []struct {
		field string
		pin   *board.Pin
		dst   *board.Input
	}{{"pair_button", o.p.PairButton, &b.PairButton}, {"doorbell", o.p.Doorbell, &b.Doorbell}, {"pir", o.p.PIR, &b.PIR}} {
		if x.pin == nil {
			continue
		}
		in, err := o.input(x.field+".pin", x.pin.ActiveLow, x.pin.Pull)
		if err != nil {
			return nil, err
		}
		*x.dst = in
	}
	if l := o.p.Light; l != nil {
		if l.IIO != "" {
			b.Light = &IIOLight{Path: l.IIO, Dark: l.Dark, Bright: l.Bright}
		} else {
			in, err := o.input("light.pin", l.ActiveLow, l.Pull)
			if err != nil {
				return nil, err
			}
			b.Light = PhotoSwitch{in}
		}
	}
	return b, nil
}

// known describes the pins the board has, for an error message.
func (o *opener) known() string {
	if o.opts.Names == nil {
		return "a pin this board has"
	}
	names := o.opts.Names()
	if len(names) == 0 {
		return "a pin this board has (periph.io found no GPIO here; is this the right board?)"
	}
	if len(names) > 24 {
		names = append(names[:24:24], "…")
	}
	return "a pin this board has: " + strings.Join(names, ", ")
}

func (o *opener) output(field string, activeLow bool) (*output, error) {
	out := &output{pin: o.pins[field], activeLow: activeLow}
	if err := out.Set(false); err != nil {
		return nil, fmt.Errorf("board: %s %s: %w", field, out.pin.Name(), err)
	}
	o.outs = append(o.outs, out)
	return out, nil
}

func (o *opener) input(field string, activeLow bool, pull string) (*input, error) {
	pin := o.pins[field]
	bias := map[string]gpio.Pull{"": gpio.PullNoChange, "up": gpio.PullUp, "down": gpio.PullDown, "none": gpio.Float}[pull]
	in := &input{pin: pin, activeLow: activeLow, edges: true, poll: o.opts.Poll}
	if err := pin.In(bias, gpio.BothEdges); err != nil {
		// No edge detection on this line: poll it.
		in.edges = false
		if err2 := pin.In(bias, gpio.NoEdge); err2 != nil {
			return nil, fmt.Errorf("board: %s %s: %w", field, pin.Name(), errors.Join(err, err2))
		}
	}
	o.ins = append(o.ins, in)
	return in, nil
}

// release turns the outputs off and interrupts waits on the inputs.
func (o *opener) release() error {
	var errs []error
	for _, out := range o.outs {
		errs = append(errs, out.Set(false))
	}
	for _, in := range o.ins {
		errs = append(errs, in.pin.Halt())
	}
	return errors.Join(errs...)
}

// realPin sees through periph's aliases, so that two names for one line
// count as the same pin.
func realPin(p gpio.PinIO) gpio.PinIO {
	for {
		r, ok := p.(gpio.RealPin)
		if !ok {
			return p
		}
		p = r.Real()
	}
}

// output drives a pin with its polarity.
type output struct {
	pin       gpio.PinOut
	activeLow bool
}

var _ board.Output = (*output)(nil)

func (o *output) Set(on bool) error { return o.pin.Out(gpio.Level(on != o.activeLow)) }

// input reads a pin with its polarity, waiting for edges or polling.
type input struct {
	pin       gpio.PinIn
	activeLow bool
	edges     bool
	poll      time.Duration
}

var _ board.Input = (*input)(nil)

func (i *input) Active() bool { return bool(i.pin.Read()) != i.activeLow }

func (i *input) WaitForEdge(timeout time.Duration) bool {
	if i.edges {
		return i.pin.WaitForEdge(timeout)
	}
	start := i.pin.Read()
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); {
		time.Sleep(min(i.poll, time.Until(deadline)))
		if i.pin.Read() != start {
			return true
		}
	}
	return false
}

// PhotoSwitch is a light sensor with a digital output (active in light):
// the level is 0 or 1.
type PhotoSwitch struct{ In board.Input }

var _ board.LightSensor = PhotoSwitch{}

// Light is 1 when the switch sees light, else 0.
func (s PhotoSwitch) Light() (float64, error) {
	if s.In.Active() {
		return 1, nil
	}
	return 0, nil
}

// IIOLight reads an ADC channel through Linux IIO (sysfs) and scales the
// raw reading between Dark and Bright to 0..1.
type IIOLight struct {
	Path         string
	Dark, Bright int
}

var _ board.LightSensor = (*IIOLight)(nil)

// Light reads the channel.
func (s *IIOLight) Light() (float64, error) {
	b, err := os.ReadFile(s.Path)
	if err != nil {
		return 0, fmt.Errorf("board: light: %w", err)
	}
	raw, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("board: light: %s: %q is not a number", s.Path, strings.TrimSpace(string(b)))
	}
	v := float64(raw-s.Dark) / float64(s.Bright-s.Dark)
	return min(max(v, 0), 1), nil
}
