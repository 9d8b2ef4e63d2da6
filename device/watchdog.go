package device

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"time"
)

// watchdog kicks a hardware watchdog device (/dev/watchdog) while camd
// runs: if camd hangs or the system stalls, the kicks stop and the
// hardware reboots the device. A clean stop writes the magic 'V' so that
// the watchdog is disarmed rather than firing (where the driver allows
// it; with nowayout it fires anyway, and the init system starts camd
// again).
type watchdog struct {
	f     *os.File
	every time.Duration
	log   *slog.Logger
}

// openWatchdog opens path, or returns nil when there is none to kick.
func openWatchdog(path string, log *slog.Logger) *watchdog {
	if path == "" {
		return nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		log.Info("camd: no hardware watchdog", "path", path)
		return nil
	}
	if err != nil {
		// Busy (systemd's RuntimeWatchdogSec owns it) or not permitted.
		log.Warn("camd: cannot open the watchdog; not kicking it", "path", path, "err", err)
		return nil
	}
	every := 5 * time.Second
	if timeout := watchdogTimeout(f); timeout > 0 {
		every = min(max(timeout/3, time.Second), 10*time.Second)
	}
	log.Info("camd: kicking the hardware watchdog", "path", path, "every", every)
	return &watchdog{f: f, every: every, log: log}
}

// run kicks until ctx ends.
func (w *watchdog) run(ctx context.Context) {
	t := time.NewTicker(w.every)
	defer t.Stop()
	w.kick()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.kick()
		}
	}
}

func (w *watchdog) kick() {
	if _, err := w.f.Write([]byte{0}); err != nil {
		w.log.Warn("camd: watchdog kick", "err", err)
	}
}

// close disarms the watchdog (magic close) and closes the device.
func (w *watchdog) close() {
	w.f.Write([]byte("V"))
	w.f.Close()
}
