package hw

import (
	"strconv"
	"strings"

	"periph.io/x/conn/v3/driver/driverreg"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/host/v3/gpioioctl"
	// The sysfs GPIO driver, for vendor kernels older than the character
	// device (Linux 4.8), such as Ingenic's 3.10.
	_ "periph.io/x/host/v3/sysfs"
)

// Only the two generic Linux GPIO drivers are linked in, not periph.io's
// whole host (host.Init would add every SoC's memory-mapped driver, about
// 0.5 MB on ARM): the character device covers every current board,
// including the Raspberry Pi, whose lines are named GPIO0..GPIO27.
func initHost() error {
	_, err := driverreg.Init()
	return err
}

// HostLookup finds a pin through periph.io's Linux GPIO drivers,
// initialising them on first use: a registered name or alias ("GPIO17", the names the
// SoC drivers and the device tree give), or "gpiochipN/OFFSET" and
// "gpiochipN/LINE-NAME" on the GPIO character device. It returns nil, nil
// for a pin that does not exist.
func HostLookup(name string) (gpio.PinIO, error) {
	if err := initHost(); err != nil {
		return nil, err
	}
	if chip, line, ok := strings.Cut(name, "/"); ok && strings.HasPrefix(chip, "gpiochip") {
		for _, c := range gpioioctl.Chips {
			if c.Name() != chip {
				continue
			}
			if n, err := strconv.Atoi(line); err == nil {
				if n < 0 || n >= c.LineCount() {
					return nil, nil
				}
				return c.ByNumber(n), nil
			}
			if l := c.ByName(line); l != nil {
				return l, nil
			}
		}
		return nil, nil
	}
	return gpioreg.ByName(name), nil
}

// hostNames lists the pins periph.io found.
func hostNames() []string {
	if err := initHost(); err != nil {
		return nil
	}
	var names []string
	for _, p := range gpioreg.All() {
		names = append(names, p.Name())
	}
	for _, c := range gpioioctl.Chips {
		names = append(names, c.Name()+"/0.."+strconv.Itoa(c.LineCount()-1))
	}
	return names
}
