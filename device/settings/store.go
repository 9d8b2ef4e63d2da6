package settings

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"go.etcd.io/bbolt"

	"github.com/camd-project/camd/storage"
)

// Version is the layout of the settings record this build writes.
//
// The record keeps only the values the owner set, by key, so a setting
// the owner never touched follows the defaults (the device's
// configuration) even when they change. When a build renames a setting
// or changes what its values mean, it bumps Version and appends a
// Migration to migrations; a record from an older build is then migrated
// step by step when the catalog is opened, after the original is kept
// under "settings.vN".
const Version = 1

// Migration rewrites a record's values from one version to the next.
type Migration func(values map[string]json.RawMessage) error

// migrations[i] takes a record from version i+1 to i+2. Version 1 is the
// first layout: there is nothing to migrate yet.
func migrations() []Migration { return nil }

// record is what the catalog holds under recordKey.
type record struct {
	Version int                        `json:"version"`
	Values  map[string]json.RawMessage `json:"values"`
}

var recordKey = []byte("settings")

// Options configure Open. The zero value means defaults.
type Options struct {
	// Defaults are the settings the owner has not changed (default:
	// Defaults()). They must be valid.
	Defaults *Settings
	// Limits bound what the owner may choose.
	Limits Limits
	Logger *slog.Logger

	// version and migrations replace this build's in tests.
	version    int
	migrations []Migration
}

// Store keeps the settings in the catalog (bucket storage.BucketSettings).
// Its methods are safe to call from several goroutines.
type Store struct {
	cat  *storage.Catalog
	opts Options
	def  Settings
	log  *slog.Logger

	mu  sync.Mutex
	rec record
	cur Settings
}

// Open reads the settings from the catalog, migrating a record written
// by an older build. A record that cannot be read is kept aside under
// "settings.unreadable-TIME" and the defaults apply; a stored value that
// is no longer allowed (the device's limits changed) is skipped, with a
// warning, and kept in the record.
func Open(cat *storage.Catalog, opts Options) (*Store, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.version == 0 {
		opts.version, opts.migrations = Version, migrations()
	}
	def := Defaults()
	if opts.Defaults != nil {
		def = *opts.Defaults
	}
	if err := def.Validate(opts.Limits); err != nil {
		return nil, fmt.Errorf("settings: defaults: %w", err)
	}
	s := &Store{cat: cat, opts: opts, def: def, log: opts.Logger}
	s.rec = record{Version: opts.version, Values: map[string]json.RawMessage{}}
	err := cat.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(storage.BucketSettings)
		raw := b.Get(recordKey)
		if raw == nil {
			return nil
		}
		var rec record
		if err := json.Unmarshal(raw, &rec); err != nil || rec.Version < 1 {
			aside := fmt.Sprintf("%s.unreadable-%d", recordKey, time.Now().Unix())
			s.log.Warn("settings: stored settings unreadable; kept aside, defaults apply", "key", aside, "err", err)
			if err := b.Put([]byte(aside), slices.Clone(raw)); err != nil {
				return err
			}
			return b.Delete(recordKey)
		}
		if rec.Values == nil {
			rec.Values = map[string]json.RawMessage{}
		}
		switch {
		case rec.Version > opts.version:
			s.log.Warn("settings: written by a newer camd; using the settings this build knows and keeping the rest",
				"version", rec.Version, "this_build", opts.version)
		case rec.Version < opts.version:
			backup := []byte(string(recordKey) + ".v" + strconv.Itoa(rec.Version))
			if b.Get(backup) == nil {
				if err := b.Put(backup, slices.Clone(raw)); err != nil {
					return err
				}
			}
			from := rec.Version
			if err := migrate(&rec, opts.version, opts.migrations); err != nil {
				// The original is kept under backup; run on the defaults
				// rather than not at all.
				s.log.Error("settings: cannot migrate; defaults apply", "err", err, "original_kept_as", string(backup))
				return nil
			}
			out, _ := json.Marshal(rec)
			if err := b.Put(recordKey, out); err != nil {
				return err
			}
			s.log.Info("settings: migrated", "from", from, "to", rec.Version, "original_kept_as", string(backup))
		}
		s.rec = rec
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.cur = s.apply(s.rec.Values)
	return s, nil
}

// migrate runs the migrations that take rec to version.
func migrate(rec *record, version int, steps []Migration) error {
	for rec.Version < version {
		step := rec.Version - 1
		if step >= len(steps) || steps[step] == nil {
			return fmt.Errorf("settings: no migration from version %d", rec.Version)
		}
		if err := steps[step](rec.Values); err != nil {
			return fmt.Errorf("settings: migrating from version %d: %w", rec.Version, err)
		}
		rec.Version++
	}
	return nil
}

// apply is the defaults with each stored value that is known and allowed.
func (s *Store) apply(values map[string]json.RawMessage) Settings {
	cur := s.def
	for _, k := range slices.Sorted(maps.Keys(values)) {
		next := cur
		err := next.set(k, values[k], s.opts.Limits)
		if err == nil {
			err = next.Validate(s.opts.Limits)
		}
		if err != nil {
			s.log.Warn("settings: stored value skipped; the default applies", "err", err)
			continue
		}
		cur = next
	}
	return cur
}

// Get returns the settings in force.
func (s *Store) Get() Settings {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

// Defaults returns the settings the owner has not changed.
func (s *Store) Defaults() Settings { return s.def }

// Limits returns the device's limits.
func (s *Store) Limits() Limits { return s.opts.Limits.withDefaults() }

// Patch changes the settings named in patch (JSON values by key; null
// restores the default) all together or not at all, stores them, and
// returns the settings before and after. An unknown key, a value of the
// wrong type or out of range is a *fielderr.Error.
func (s *Store) Patch(patch map[string]json.RawMessage) (before, after Settings, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	before = s.cur
	next := s.cur
	values := maps.Clone(s.rec.Values)
	for _, k := range slices.Sorted(maps.Keys(patch)) {
		raw := patch[k]
		if string(raw) == "null" {
			def := s.def
			if err := next.set(k, []byte(def.value(k)), s.opts.Limits); err != nil {
				return before, before, err
			}
			delete(values, k)
			continue
		}
		if err := next.set(k, raw, s.opts.Limits); err != nil {
			return before, before, err
		}
		values[k] = json.RawMessage(next.value(k))
	}
	if err := next.Validate(s.opts.Limits); err != nil {
		return before, before, err
	}
	if maps.EqualFunc(values, s.rec.Values, func(a, b json.RawMessage) bool { return string(a) == string(b) }) {
		return before, next, nil
	}
	rec := record{Version: max(s.rec.Version, s.opts.version), Values: values}
	out, err := json.Marshal(rec)
	if err != nil {
		return before, before, fmt.Errorf("settings: %w", err)
	}
	err = s.cat.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(storage.BucketSettings).Put(recordKey, out)
	})
	if err != nil {
		return before, before, fmt.Errorf("settings: store: %w", err)
	}
	s.rec, s.cur = rec, next
	return before, next, nil
}

// Set is Patch with Go values, for the device's own code and tests.
func (s *Store) Set(values map[string]any) (before, after Settings, err error) {
	patch := map[string]json.RawMessage{}
	for k, v := range values {
		b, err := json.Marshal(v)
		if err != nil {
			return s.Get(), s.Get(), fmt.Errorf("settings: %s: %w", k, err)
		}
		patch[k] = b
	}
	return s.Patch(patch)
}
