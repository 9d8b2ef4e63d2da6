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
	"syscall"

	"github.com/camd-project/camd/device"
)

const usage = `camd: open firmware daemon for IP cameras, doorbells and NVRs

usage:
  camd run [--config FILE] [--data DIR] [--listen HOST:PORT] [--log-level LEVEL]
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

	// A camera has little memory: collect garbage at half the default
	// heap growth unless the integrator chose otherwise.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
	d, err := device.New(cfg, log)
	if err != nil {
		log.Error("camd: cannot start", "err", err)
		return 1
	}
	fmt.Fprintf(stderr, "\ncamd is running. Watch live at https://%s/\n"+
		"(self-signed certificate; SHA-256 fingerprint %s)\n"+
		"or: camctl view --addr %s --fingerprint %s --seconds 10\n\n",
		d.Addr(), d.Identity().Fingerprint, d.Addr(), d.Identity().Fingerprint)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := d.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		log.Error("camd: stopped with error", "err", err)
		return 1
	}
	return 0
}
