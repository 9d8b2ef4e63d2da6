// Package board is camd's view of camera hardware: an IR-cut filter, IR
// LEDs, a status LED, buttons (pair/reset, doorbell), a PIR motion sensor
// and a light sensor.
//
// The package holds the contracts (Output, Input, LightSensor, IRCut),
// with no hardware imports, the board profiles that map them to pins, and
// the behaviour built on the contracts: debounced inputs (or reported on
// their first edge, WatchOptions.Leading: the doorbell) and buttons with
// a long press (Watcher), status LED patterns (StatusLight), the pulsed
// IR-cut filter (PulsedIRCut) and automatic day/night switching with
// hysteresis (DayNight). They keep time with the time package itself
// (timers, time.Now, time.Sleep): there is no clock to inject.
//
// Tests control time with testing/synctest, not an injected clock: the
// injectable clock of periph's gpiotest.Pin, which the style guide cites,
// is replaced by synctest. A test runs in a bubble (synctest.Test), where
// time is fake and moves only when every goroutine of the bubble is
// durably blocked: on a channel made in the bubble, a timer, time.Sleep,
// sync.Cond or sync.WaitGroup, not on a mutex or real I/O. The test makes
// the parts inside the bubble, acts (presses a button, sets the light),
// lets time pass with time.Sleep and calls synctest.Wait before it looks.
// A 10 s long press or a 30 s day/night hold then takes milliseconds, and
// the test sees exactly when things happen (the 30 ms debounce to the
// millisecond). What the bubble's goroutines wait on must be made in the
// bubble: the sim board (sim.New), the watchers, the status light and the
// day/night controller. periph's gpiotest.Pin works in a bubble when its
// EdgesChan is made there and its Clock is left nil (WaitForEdge then
// selects on EdgesChan and time.After). The boardtest fakes stamp their
// history with time.Now, the bubble's time. Real GPIO lines (board/hw on
// the character device or sysfs) block in system calls, so tests on them
// wait on conditions instead.
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
