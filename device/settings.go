package device

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/camd-project/camd/board"
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

	mu      sync.Mutex // one change stored and applied at a time
	onApply []func(before, after settings.Settings)
}

// settingsDefaults are the settings the owner has not changed: the
// configuration's name and video, and the fixed defaults for the rest.
func settingsDefaults(cfg Config) (settings.Settings, settings.Limits) {
	s := settings.Defaults()
	s.Name = cfg.Name
	s.Resolution = fmt.Sprintf("%dx%d", cfg.Video.Width, cfg.Video.Height)
	s.FPS = cfg.Video.FPS
	s.Bitrate = cfg.Video.Bitrate
	return s, settings.Limits{MinBitrate: cfg.Video.MinBitrate, MaxBitrate: cfg.Video.MaxBitrate}
}

// withSettings is cfg with the settings that shape the source and the
// announcements applied.
func withSettings(cfg Config, s settings.Settings) Config {
	cfg.Name = s.Name
	cfg.Video.Width, cfg.Video.Height = s.Size()
	cfg.Video.FPS = s.FPS
	cfg.Video.Bitrate = s.Bitrate
	return cfg
}

// initSettings opens the settings and applies them to the configuration
// the other components are built from.
func (d *Daemon) initSettings() error {
	def, lim := settingsDefaults(d.cfg)
	store, err := settings.Open(d.catalog, settings.Options{Defaults: &def, Limits: lim, Logger: d.log})
	if err != nil {
		return err
	}
	d.settings.store = store
	base := d.cfg
	d.settings.build = func(s settings.Settings) (media.Source, error) {
		return newSource(withSettings(base, s), d.log)
	}
	d.cfg = withSettings(d.cfg, store.Get())
	return nil
}

// newLiveSource builds the source from the settings, wrapped so that
// settings apply to it live.
func (d *Daemon) newLiveSource() (media.Source, error) {
	s := d.settings.store.Get()
	src, err := d.settings.build(s)
	if err != nil {
		return nil, err
	}
	applyControls(src, s)
	d.settings.live = newLiveSource(src, s.Bitrate)
	return d.settings.live, nil
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

// onSettings registers f to run after each change of the settings, with
// the settings before and after (discovery re-announces a new name, the
// recorder follows recording_mode). Call it before Run.
func (d *Daemon) onSettings(f func(before, after settings.Settings)) {
	d.settings.onApply = append(d.settings.onApply, f)
}

// changeSettings stores a patch and applies it. Changes are applied in
// the order they are stored.
func (d *Daemon) changeSettings(patch map[string]json.RawMessage) (settings.Settings, error) {
	d.settings.mu.Lock()
	defer d.settings.mu.Unlock()
	before, after, err := d.settings.store.Patch(patch)
	if err != nil {
		return before, err
	}
	d.applySettings(before, after)
	return after, nil
}

// applySettings makes a change take effect without a restart.
func (d *Daemon) applySettings(before, after settings.Settings) {
	changed := settings.Changed(before, after)
	if len(changed) == 0 {
		return
	}
	d.log.Info("camd: settings changed", "keys", strings.Join(changed, ","))
	has := func(keys ...string) bool {
		return slices.ContainsFunc(keys, func(k string) bool { return slices.Contains(changed, k) })
	}
	live := d.settings.live
	if has("resolution", "fps") && d.cfg.Source != "passthrough" {
		// The encoder is built for one size and rate: start a new one.
		src, err := d.settings.build(after)
		if err != nil {
			d.log.Error("camd: cannot rebuild the source for the new settings; keeping the old one", "err", err)
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
	if has("night_mode") && d.board.dayNight != nil {
		d.board.dayNight.SetMode(board.Mode(after.NightMode))
	}
	if has("status_led") && d.board.status != nil {
		d.board.status.SetEnabled(after.StatusLED)
	}
	// name, time_zone, auto_start, recording_mode and motion_sensitivity
	// are read where they are used: the name by discovery (through
	// onSettings), auto start at boot (AutoStart), recording and motion
	// by the recorder.
	for _, f := range d.settings.onApply {
		f(before, after)
	}
}

// Settings returns the settings in force.
func (d *Daemon) Settings() settings.Settings { return d.settings.store.Get() }

func (d *Daemon) settingsRoutes() []route {
	return []route{
		{"GET /api/v1/settings", Owner, d.handleGetSettings},
		{"PATCH /api/v1/settings", Owner, d.handlePatchSettings},
	}
}

func (d *Daemon) handleGetSettings(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, d.settings.store.Get())
}

// handlePatchSettings changes the settings named in a JSON object (a
// merge patch: null restores a default), all or none.
func (d *Daemon) handlePatchSettings(w http.ResponseWriter, r *http.Request) {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != "" && ct != "application/json" && ct != "application/merge-patch+json" {
		jsonError(w, http.StatusUnsupportedMediaType, "settings: send application/json or application/merge-patch+json")
		return
	}
	var patch map[string]json.RawMessage
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	if err := dec.Decode(&patch); err != nil || patch == nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			jsonError(w, http.StatusRequestEntityTooLarge, "settings: body larger than 64 KiB")
			return
		}
		jsonError(w, http.StatusBadRequest, "settings: want a JSON object of settings, e.g. {\"mute\": true}")
		return
	}
	after, err := d.changeSettings(patch)
	var fe *settings.FieldError
	switch {
	case errors.As(err, &fe):
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnprocessableEntity)
		json.NewEncoder(w).Encode(map[string]any{
			"error": fe.Error(), "field": fe.Field, "value": json.RawMessage(jsonOrString(fe.Value)), "allowed": fe.Allowed,
		})
		return
	case err != nil:
		d.log.Error("camd: settings not stored", "err", err)
		jsonError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, after)
}

// jsonOrString keeps a valid JSON value as is and quotes anything else.
func jsonOrString(v string) string {
	if json.Valid([]byte(v)) {
		return v
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// AutoStart reports whether the owner lets camd start at boot (the
// auto_start setting). The init scripts ask with `camd run --boot`; camd
// must not be running (the catalog is locked while it runs).
func AutoStart(cfg Config, log *slog.Logger) (bool, error) {
	cat, err := storage.OpenCatalog(filepath.Join(cfg.Data, "catalog.db"), storage.CatalogOptions{})
	if err != nil {
		return false, err
	}
	defer cat.Close()
	def, lim := settingsDefaults(cfg)
	store, err := settings.Open(cat, settings.Options{Defaults: &def, Limits: lim, Logger: log})
	if err != nil {
		return false, err
	}
	return store.Get().AutoStart, nil
}
