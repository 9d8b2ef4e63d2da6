// Command camd is the camera daemon. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/skip2/go-qrcode"

	"github.com/camd-project/camd/device"
	"github.com/camd-project/camd/device/pairing"
	"github.com/camd-project/camd/internal/durable"
)

const usage = `camd: open firmware daemon for IP cameras, doorbells and NVRs

usage:
  camd run [--config FILE] [--data DIR] [--listen HOST:PORT] [--log-level LEVEL] [--boot]
  camd qr [--data DIR] [--png FILE]     show the pairing code of the running camd
  camd pair-window [--data DIR]         open pairing for 15 minutes
  camd factory-reset [--config FILE] [--data DIR] --yes
                                        erase keys, users, settings, events, snapshots
                                        and recordings (also those under recording.path)
  camd version
`

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "run":
		return runDaemon(args[1:], stderr)
	case "qr":
		return qr(args[1:], stdout, stderr)
	case "pair-window":
		return control(args[1:], "POST", "/pair-window", stdout, stderr)
	case "factory-reset":
		return factoryReset(args[1:], stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "camd", device.Version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "camd: unknown command %q\n%s", args[0], usage)
	return 2
}

func runDaemon(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("camd run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	flags := newConfigFlags(fs)
	listen := fs.String("listen", "", "HTTPS `address` (default 127.0.0.1:8443)")
	boot := fs.Bool("boot", false, "started by the init system at boot: do nothing if the owner turned auto start off")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := flags.config()
	if err == nil {
		if *listen != "" {
			cfg.Listen = *listen
		}
		err = cfg.Validate()
	}
	if err != nil {
		fmt.Fprintln(stderr, "camd:", err)
		return 2
	}
	log := logger(cfg, stderr)
	if *boot {
		if on, err := device.AutoStart(cfg, log); err == nil && !on {
			log.Info("camd: auto start is off; not starting at boot (camd run without --boot starts it)")
			return 0
		} else if err != nil {
			log.Warn("camd: cannot read the auto start setting; starting", "err", err)
		}
	}

	// A camera has little memory: let the heap grow by a quarter of what
	// is live between collections (Go's default is all of it) unless the
	// integrator chose otherwise. Measured: 2 MB less resident with a
	// passthrough stream, recording and two viewers, at no CPU cost that
	// shows at 2 Mbps.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(25)
	}
	profileOnSignal(log)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	for {
		d, err := device.New(cfg, log)
		if err != nil {
			log.Error("camd: cannot start", "err", err)
			return 1
		}
		greet(d, cfg, stderr)
		// After a factory reset Run has erased the device: start again,
		// as a new one. A reset that failed half way stops camd; the next
		// start finishes it.
		err = d.Run(ctx)
		if errors.Is(err, device.ErrFactoryReset) {
			log.Warn("camd: factory reset done; starting as a new device")
			continue
		}
		if err != nil {
			log.Error("camd: stopped with error", "err", err)
			return 1
		}
		return 0
	}
}

// greet tells the person at the terminal how to pair and watch. The
// pairing code is shown only on a terminal: it is a secret, and a log
// file is not the place for it.
func greet(d *device.Daemon, cfg device.Config, w io.Writer) {
	fmt.Fprintf(w, "\ncamd is running: https://%s/ (certificate SHA-256 %s)\n", d.Addr(), d.Identity().Fingerprint)
	if d.Paired() {
		fmt.Fprintf(w, "Paired. Open pairing for a new phone with: %s pair-window --data %s\n\n", os.Args[0], cfg.Data)
		return
	}
	if fi, err := os.Stderr.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 && w == io.Writer(os.Stderr) {
		payload := d.SetupPayload()
		if q, err := qrcode.New(setupQR(payload), qrcode.Medium); err == nil {
			fmt.Fprint(w, q.ToSmallString(false))
		}
		fmt.Fprintf(w, "%s  camctl pair %s\n\n", scanHint(payload), payload)
		return
	}
	fmt.Fprintf(w, "Not paired yet. Show the pairing code with: %s qr --data %s\n\n", os.Args[0], cfg.Data)
}

// setupQR is what the pairing QR code shown on the device holds: when the
// code names the camera's address, a link to its web app's pairing screen
// with the code in the fragment (a phone's camera app opens it, and a
// fragment is never sent to a server, so it reaches no log), else the
// code itself. camctl and apps read either (pairing.Parse).
func setupQR(payload string) string {
	p, err := pairing.Parse(payload)
	if err != nil || !p.Host.IsValid() {
		return payload
	}
	return "https://" + p.Host.String() + "/#pair=" + payload
}

// scanHint says under the QR code what to do with it.
func scanHint(payload string) string {
	if link := setupQR(payload); link != payload {
		return "Scan this code with your phone's camera: it opens " + link + "\n" +
			"(your browser asks you to accept the camera's certificate: docs/app.md). Or pair with camctl:\n"
	}
	return "This code names no address (camd listens on every interface): open https://ADDRESS:PORT/\n" +
		"on your phone and paste the code there, or pair with camctl:\n"
}

// configFlags are the flags that say where camd keeps its data and how
// it logs, over the configuration file: `camd run` and `camd
// factory-reset` read the same.
type configFlags struct{ file, data, level *string }

func newConfigFlags(fs *flag.FlagSet) configFlags {
	return configFlags{
		file:  fs.String("config", "", "YAML configuration `file`"),
		data:  fs.String("data", "", "data `directory` (default ./data)"),
		level: fs.String("log-level", "", "debug, info, warn or error"),
	}
}

// config reads the configuration file and applies the flags over it; the
// caller validates it.
func (f configFlags) config() (device.Config, error) {
	cfg := device.Defaults()
	if *f.file != "" {
		if err := cfg.LoadConfig(*f.file); err != nil {
			return cfg, err
		}
	}
	if *f.data != "" {
		cfg.Data = *f.data
	}
	if *f.level != "" {
		cfg.LogLevel = *f.level
	}
	return cfg, nil
}

// logger is camd's log, on stderr at the configured level.
func logger(cfg device.Config, stderr io.Writer) *slog.Logger {
	var lvl slog.Level
	lvl.UnmarshalText([]byte(cfg.LogLevel))
	return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl}))
}

func dataFlag(fs *flag.FlagSet) *string {
	return fs.String("data", "./data", "data `directory` of the running camd (/var/lib/camd when installed)")
}

func control(args []string, method, path string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("camd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := dataFlag(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	out, err := device.Control(*data, method, path)
	if err != nil {
		fmt.Fprintln(stderr, "camd:", err)
		return 1
	}
	fmt.Fprint(stdout, out)
	return 0
}

func qr(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("camd qr", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := dataFlag(fs)
	png := fs.String("png", "", "write the QR code to this PNG `file` (for a sticker or a screen)")
	size := fs.Int("size", 512, "PNG size in pixels")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	out, err := device.Control(*data, "GET", "/qr")
	if err != nil {
		fmt.Fprintln(stderr, "camd:", err)
		return 1
	}
	payload := strings.TrimSpace(out)
	if *png != "" {
		// A sticker outlives an address: the PNG holds the code alone.
		q, err := qrcode.New(payload, qrcode.Medium)
		// The setup code carries the pairing secret: owner-only.
		var b []byte
		if err == nil {
			b, err = q.PNG(*size)
		}
		if err == nil {
			err = durable.WriteFile(*png, b, 0o600)
		}
		if err != nil {
			fmt.Fprintln(stderr, "camd:", err)
			return 1
		}
		fmt.Fprintf(stdout, "wrote %s\n", *png)
		return 0
	}
	q, err := qrcode.New(setupQR(payload), qrcode.Medium)
	if err != nil {
		fmt.Fprintln(stderr, "camd:", err)
		return 1
	}
	// The code is the last line, for scripts.
	fmt.Fprint(stdout, q.ToSmallString(false), scanHint(payload), payload, "\n")
	return 0
}

// factoryReset asks the running camd to reset (it erases everything once
// it has closed its files, and starts again as a new device), or, with
// no camd running, erases what camd keeps itself: the data directory's
// files and the recording volumes, which may be elsewhere
// (recording.path): it reads the configuration as `camd run` does.
func factoryReset(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("camd factory-reset", flag.ContinueOnError)
	fs.SetOutput(stderr)
	flags := newConfigFlags(fs)
	yes := fs.Bool("yes", false, "confirm: erase keys, users, settings, events, snapshots and recordings")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if !*yes {
		fmt.Fprintln(stderr, "camd: factory reset erases keys, users, settings, events, snapshots and recordings; add --yes to confirm")
		return 2
	}
	cfg, err := flags.config()
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		fmt.Fprintln(stderr, "camd:", err)
		return 2
	}
	out, err := device.Control(cfg.Data, "POST", "/factory-reset")
	if err == nil {
		fmt.Fprint(stdout, out)
		return 0
	}
	if !errors.Is(err, device.ErrNotRunning) {
		fmt.Fprintln(stderr, "camd:", err)
		return 1
	}
	if err := device.FactoryReset(cfg, logger(cfg, stderr)); err != nil {
		fmt.Fprintln(stderr, "camd:", err)
		return 1
	}
	fmt.Fprintln(stdout, "factory reset done; the next start makes a new identity and opens pairing")
	return 0
}
