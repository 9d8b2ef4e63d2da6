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
	"github.com/camd-project/camd/internal/privatefile"
)

const usage = `camd: open firmware daemon for IP cameras, doorbells and NVRs

usage:
  camd run [--config FILE] [--data DIR] [--listen HOST:PORT] [--log-level LEVEL] [--boot]
  camd qr [--data DIR] [--png FILE]     show the pairing code of the running camd
  camd pair-window [--data DIR]         open pairing for 15 minutes
  camd factory-reset [--data DIR] --yes erase keys, users, settings and recordings
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
	cfgFile := fs.String("config", "", "YAML configuration `file`")
	data := fs.String("data", "", "data `directory` (default ./data)")
	listen := fs.String("listen", "", "HTTPS `address` (default 127.0.0.1:8443)")
	level := fs.String("log-level", "", "debug, info, warn or error")
	boot := fs.Bool("boot", false, "started by the init system at boot: do nothing if the owner turned auto start off")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg := device.Defaults()
	if *cfgFile != "" {
		if err := cfg.LoadConfig(*cfgFile); err != nil {
			fmt.Fprintln(stderr, "camd:", err)
			return 2
		}
	}
	for _, o := range []struct {
		flag string
		dst  *string
	}{{*data, &cfg.Data}, {*listen, &cfg.Listen}, {*level, &cfg.LogLevel}} {
		if o.flag != "" {
			*o.dst = o.flag
		}
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintln(stderr, "camd:", err)
		return 2
	}
	var lvl slog.Level
	lvl.UnmarshalText([]byte(cfg.LogLevel))
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl}))
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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	for {
		d, err := device.New(cfg, log)
		if err != nil {
			log.Error("camd: cannot start", "err", err)
			return 1
		}
		greet(d, cfg, stderr)
		err = d.Run(ctx)
		if errors.Is(err, device.ErrFactoryReset) {
			if err := device.FactoryReset(cfg.Data); err != nil {
				log.Error("camd: factory reset failed", "err", err)
				return 1
			}
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
		if q, err := qrcode.New(payload, qrcode.Medium); err == nil {
			fmt.Fprint(w, q.ToSmallString(false))
		}
		fmt.Fprintf(w, "Scan this code with the camd app, or run:\n  camctl pair %s\n\n", payload)
		return
	}
	fmt.Fprintf(w, "Not paired yet. Show the pairing code with: %s qr --data %s\n\n", os.Args[0], cfg.Data)
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
	q, err := qrcode.New(payload, qrcode.Medium)
	if err != nil {
		fmt.Fprintln(stderr, "camd:", err)
		return 1
	}
	if *png != "" {
		// The setup code carries the pairing secret: owner-only.
		b, err := q.PNG(*size)
		if err == nil {
			err = privatefile.Write(*png, b)
		}
		if err != nil {
			fmt.Fprintln(stderr, "camd:", err)
			return 1
		}
		fmt.Fprintf(stdout, "wrote %s\n", *png)
		return 0
	}
	fmt.Fprint(stdout, q.ToSmallString(false))
	fmt.Fprintln(stdout, payload)
	return 0
}

func factoryReset(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("camd factory-reset", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := dataFlag(fs)
	yes := fs.Bool("yes", false, "confirm: erase keys, users, settings and recordings")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if !*yes {
		fmt.Fprintln(stderr, "camd: factory reset erases keys, users, settings and recordings; add --yes to confirm")
		return 2
	}
	out, err := device.Control(*data, "POST", "/factory-reset")
	if err == nil {
		fmt.Fprint(stdout, out)
		return 0
	}
	if !strings.Contains(err.Error(), "not running") {
		fmt.Fprintln(stderr, "camd:", err)
		return 1
	}
	// camd is not running: erase the data directory directly.
	if err := device.FactoryReset(*data); err != nil {
		fmt.Fprintln(stderr, "camd:", err)
		return 1
	}
	fmt.Fprintln(stdout, "factory reset done; the next start makes a new identity and opens pairing")
	return 0
}
