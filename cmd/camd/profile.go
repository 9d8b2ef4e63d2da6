package main

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"
)

// profileOnSignal lets a developer see where camd's memory goes on a
// running device: with CAMD_PROFILE set to a path prefix, each SIGUSR1
// writes PREFIX.heap (after a collection; `go tool pprof
// -sample_index=inuse_space`) and PREFIX.goroutine (goroutines grouped by
// stack, counted). Off unless the environment asks for it (it samples
// the heap more often).
func profileOnSignal(log *slog.Logger) {
	prefix := os.Getenv("CAMD_PROFILE")
	if prefix == "" {
		return
	}
	// Sample every 4 KB allocated (Go's default: 512 KB), so that small
	// per-viewer objects show.
	runtime.MemProfileRate = 4096
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR1)
	go func() {
		for range sig {
			if err := writeProfiles(prefix); err != nil {
				log.Warn("camd: profile", "err", err)
				continue
			}
			log.Info("camd: profiles written", "prefix", prefix, "goroutines", runtime.NumGoroutine())
		}
	}()
}

func writeProfiles(prefix string) error {
	runtime.GC()
	for _, p := range []struct {
		name  string
		debug int
	}{{"heap", 0}, {"goroutine", 1}} {
		f, err := os.Create(prefix + "." + p.name + ".tmp")
		if err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
		err = pprof.Lookup(p.name).WriteTo(f, p.debug)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(prefix+"."+p.name+".tmp", prefix+"."+p.name)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
	}
	return nil
}
