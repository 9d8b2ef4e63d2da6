// Package board is camd's view of camera hardware: an IR-cut filter, IR
// LEDs, a status LED, buttons (pair/reset, doorbell), a PIR motion sensor
// and a light sensor.
//
// The package holds the contracts (Output, Input, LightSensor, IRCut),
// with no hardware imports, the board profiles that map them to pins, and
// the behaviour built on the contracts: debounced inputs and buttons with
// a long press (Watcher), status LED patterns (StatusLight), the pulsed
// IR-cut filter (PulsedIRCut) and automatic day/night switching with
// hysteresis (DayNight). Every timed behaviour takes a clockwork.Clock, so
// tests drive it with a fake clock.
//
// Drivers live beside it: board/hw drives a real board's GPIO through
// periph.io from a profile; board/sim is the simulated board (periph's
// gpiotest pins behind the same driver) used by default on hosts and in
// tests, scriptable with Press, Release, SetLight and SetMotion.
//
// Built-in profiles: "rpi" (Raspberry Pi 40-pin header) and "gpiochip"
// (any Linux board through the GPIO character device). A manufacturer
// adds a board with a YAML file; see docs/porting.md.
package board
