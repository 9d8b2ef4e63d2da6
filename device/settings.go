package device

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/camd-project/camd/device/pairing"
	"github.com/camd-project/camd/device/settings"
	"github.com/camd-project/camd/media"
	"github.com/camd-project/camd/storage"
)

// settingsState is the owner's settings and what applies them.
type settingsState struct {
	store *settings.Store
	live  *liveSource
	// build makes a source for the given settings (the configuration
	// with the settings' video size, frame rate and bitrate).
	build func(settings.Settings) (media.Source, error)
	// fixedVideo: the source's size and rate are not camd's to change
	// (a passthrough stream's are the hardware encoder's).
	fixedVideo bool
	// listeners are told of each change once the source has it: the
	// recorder, the board, discovery.
	listeners []func(before, after settings.Settings)
	// events hears who changed which settings.
	events *eventState
	log    *slog.Logger

	mu sync.Mutex // one change stored and applied at a time
}

// settingsDefaults are the settings the owner has not changed: the
// configuration's name and video, and the fixed defaults for the rest.
func settingsDefaults(cfg Config) (settings.Settings, settings.Limits) {
	s := settings.Defaults()
	s.Name = cfg.Name
	s.Resolution = fmt.Sprintf("%dx%d", cfg.Video.Width, cfg.Video.Height)
	s.FPS = cfg.Video.FPS
	s.Bitrate = cfg.Video.Bitrate
	s.CrashReports = cfg.CrashReports
	s.CORSAllowedOrigins = settings.NewOrigins(cfg.CORS.AllowedOrigins...)
	return s, settings.Limits{MinBitrate: cfg.Video.MinBitrate, MaxBitrate: cfg.Video.MaxBitrate,
		CrashCollector: cfg.CrashReportsURL != ""}
}

// withSettings is cfg with the settings that shape the source and the
// announcements applied.
func withSettings(cfg Config, s settings.Settings) Config {
	cfg.Name = s.Name
	cfg.Video.Width, cfg.Video.Height = s.Size()
	cfg.Video.FPS = s.FPS
	cfg.Video.Bitrate = s.Bitrate
	cfg.CrashReports = s.CrashReports
	return cfg
}

// openSettings opens the owner's settings, with the configuration's as
// defaults.
func openSettings(cat *storage.Catalog, cfg Config, log *slog.Logger) (*settings.Store, error) {
	def, lim := settingsDefaults(cfg)
	return settings.Open(cat, settings.Options{Defaults: &def, Limits: lim, Logger: log})
}

// sourceBuilder makes the sources that base names, shaped by the
// settings, their microphone through mic (nil: none).
func sourceBuilder(base Config, mic media.MicFunc, log *slog.Logger) func(settings.Settings) (media.Source, error) {
	return func(s settings.Settings) (media.Source, error) {
		return newSource(withSettings(base, s), mic, log)
	}
}

// buildLiveSource builds the source for the settings, wrapped so that
// settings apply to it live.
func buildLiveSource(build func(settings.Settings) (media.Source, error), s settings.Settings) (*liveSource, error) {
	src, err := build(s)
	if err != nil {
		return nil, err
	}
	applyControls(src, s)
	return newLiveSource(src, s.Bitrate), nil
}

// What a source may offer to apply settings live. Sources that lack one
// ignore the setting (a passthrough stream is flipped by its encoder).
type (
	muter      interface{ SetMute(bool) }
	flipper    interface{ SetFlip(flip, mirror bool) }
	clockZoner interface{ SetLocation(*time.Location) }
)

// applyControls applies the live controls to a source.
func applyControls(src media.Source, s settings.Settings) {
	if m, ok := src.(muter); ok {
		m.SetMute(s.Mute)
	}
	if f, ok := src.(flipper); ok {
		f.SetFlip(s.Flip, s.Mirror)
	}
	if z, ok := src.(clockZoner); ok {
		z.SetLocation(s.Location())
	}
}

// Get returns the settings in force.
func (ss *settingsState) Get() settings.Settings { return ss.store.Get() }

// Change stores a patch that the user by asked for and applies it, and
// tells the event log which settings changed. Changes are applied in the
// order they are stored.
func (ss *settingsState) Change(patch map[string]json.RawMessage, by pairing.User) (settings.Settings, error) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	before, after, err := ss.store.Patch(patch)
	if err != nil {
		return before, err
	}
	ss.apply(before, after)
	if changed := settings.Changed(before, after); len(changed) > 0 {
		ss.events.settingsChanged(changed, by)
	}
	return after, nil
}

// apply makes a change take effect without a restart.
func (ss *settingsState) apply(before, after settings.Settings) {
	changed := settings.Changed(before, after)
	if len(changed) == 0 {
		return
	}
	ss.log.Info("camd: settings changed", "keys", strings.Join(changed, ","))
	has := func(keys ...string) bool {
		return slices.ContainsFunc(keys, func(k string) bool { return slices.Contains(changed, k) })
	}
	live := ss.live
	if has("resolution", "fps") && !ss.fixedVideo {
		// The encoder is built for one size and rate: start a new one.
		src, err := ss.build(after)
		if err != nil {
			ss.log.Error("camd: cannot rebuild the source for the new settings; keeping the old one", "err", err)
		} else {
			applyControls(src, after)
			live.replace(src)
		}
	}
	if has("mute", "flip", "mirror", "time_zone") {
		applyControls(live.current(), after)
	}
	if has("bitrate") {
		live.setCeiling(after.Bitrate)
	}
	// The rest are read where they are used: night mode and the status
	// LED by the board, the name by discovery, recording_mode and
	// motion_sensitivity by the recorder, whip_url and whip_token by the
	// WHIP publish (all listeners), auto start at boot (AutoStart),
	// cors_allowed_origins by the API at each request.
	for _, f := range ss.listeners {
		f(before, after)
	}
}

// AutoStart reports whether the owner lets camd start at boot (the
// auto_start setting). The init scripts ask with `camd run --boot`; camd
// must not be running (the catalog is locked while it runs). A factory
// reset left unfinished starts camd, which finishes it.
func AutoStart(cfg Config, log *slog.Logger) (bool, error) {
	if resetIsPending(cfg) {
		return true, nil
	}
	cat, err := storage.OpenCatalog(filepath.Join(cfg.Data, catalogFile), storage.CatalogOptions{})
	if err != nil {
		return false, err
	}
	defer cat.Close()
	store, err := openSettings(cat, cfg, log)
	if err != nil {
		return false, err
	}
	return store.Get().AutoStart, nil
}
