package device

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"

	"github.com/camd-project/camd/device/crash"
	"github.com/camd-project/camd/device/metrics"
	"github.com/camd-project/camd/internal/durable"
	"github.com/camd-project/camd/storage"
	"github.com/camd-project/camd/storage/card"
	"github.com/camd-project/camd/storage/recordings"
)

// Files camd keeps in the data directory besides the identity's
// (identity.go).
const (
	catalogFile   = "catalog.db"
	snapshotsFile = "snapshots.db"
	// recordingsDir holds the recording volumes unless recording.path
	// puts them elsewhere.
	recordingsDir = "recordings"
	// resetPending marks a factory reset begun and not finished (a power
	// cut in the middle): the next start finishes it first.
	resetPending = "reset-pending"
	// resetCard marks a reset that ran while the card was out of the
	// camera: the store erases the card's recordings when it comes back
	// (recordings.Options.EraseMark).
	resetCard = "reset-card"
)

// ErrFactoryReset is returned by Run after a factory reset (the control
// socket, a long press of the pair button) erased the device: the caller
// starts a new daemon, which is a new device.
var ErrFactoryReset = errors.New("device: factory reset")

// ErrRunning: FactoryReset found a camd running on the data.
var ErrRunning = errors.New("device: a camd is running on this data directory")

// recordingDir is where the recording volumes are.
func recordingDir(cfg Config) string {
	if cfg.Recording.Path != "" {
		return cfg.Recording.Path
	}
	return filepath.Join(cfg.Data, recordingsDir)
}

// kept is everything camd keeps for cfg, as filepath.Glob patterns: the
// files New opens or makes, the temporary files of their writes, what
// was moved aside from them as damaged, and the recording volumes
// wherever recording.path puts them. FactoryReset erases exactly these,
// so a mistaken --data loses no other file. A file camd starts to keep
// is added here: TestFactoryResetErasesEverything fails until it is.
func kept(cfg Config) []string {
	var pats []string
	for _, name := range []string{idFile, tlsCert, tlsKey, dtlsFile, keyRoot, vapidFile, resetPending, resetCard, mqttMarker, metrics.TokenFile} {
		path := filepath.Join(cfg.Data, name)
		pats = append(pats, path, atomicTemps(path))
	}
	for _, name := range []string{catalogFile, snapshotsFile} {
		path := filepath.Join(cfg.Data, name)
		pats = append(pats, path, storage.AsideGlob(path))
	}
	for _, name := range []string{ControlSocket, updateDir, networkDir, logsDir, crash.TraceFile, crash.ReportsDir} {
		pats = append(pats, filepath.Join(cfg.Data, name))
	}
	return append(pats, recordings.Files(recordingDir(cfg))...)
}

// FactoryReset erases what camd keeps for cfg (kept): keys, users,
// settings, pairing state, the event log, saved snapshots, the log
// ring, crash reports, the metrics token and every recording volume,
// with what was moved aside. (Run has already had wpa_supplicant forget
// the Wi-Fi network, which it keeps.) The next start
// makes a new identity and opens pairing. camd must not be running on
// cfg (it refuses with ErrRunning while a camd holds the catalog): Run
// calls FactoryReset once it has closed every file.
//
// Files are unlinked, not overwritten (docs/security.md says why). A
// mark written first and removed last makes the next New finish a reset
// that stopped half way, so a device never starts with part of its
// former owner's data. A card out of the camera at the reset (the
// recording directory missing, or no card mounted there) is erased when
// it is back, before the store shows anything of it (resetCard).
func FactoryReset(cfg Config, log *slog.Logger) error {
	unlock, err := lockCatalog(cfg)
	if err != nil {
		return err
	}
	defer unlock()
	mark := filepath.Join(cfg.Data, resetPending)
	marked := true
	if err = durable.WriteFile(mark, []byte("camd: factory reset in progress\n"), 0o600); err != nil {
		if _, serr := os.Stat(cfg.Data); !errors.Is(serr, fs.ErrNotExist) {
			return fmt.Errorf("device: factory reset: %w", err)
		}
		marked = false // no data directory: nothing in it to erase
	}
	var errs []error
	erased := 0
	for _, pat := range kept(cfg) {
		matches, _ := filepath.Glob(pat)
		for _, m := range matches {
			if m == mark {
				continue
			}
			if err := os.RemoveAll(m); err != nil {
				errs = append(errs, err)
				continue
			}
			erased++
		}
	}
	recDir := recordingDir(cfg)
	if cfg.Recording.Path == "" {
		os.Remove(recDir) // when empty: nothing of camd's is left in it
	} else if cardOut(cfg) {
		// What the card holds is erased when it comes back, before
		// anything of it is shown to the new owner.
		if err := durable.WriteFile(filepath.Join(cfg.Data, resetCard), []byte(recDir+"\n"), 0o600); err != nil {
			errs = append(errs, err)
		}
		log.Warn("camd: factory reset: the card is out of the camera; its recordings will be erased when it is back",
			"recording_path", recDir)
	}
	syncDir(recDir)
	syncDir(cfg.Data)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("device: factory reset: %w", err)
	}
	if marked {
		if err := os.Remove(mark); err != nil {
			return fmt.Errorf("device: factory reset: %w", err)
		}
		syncDir(cfg.Data)
	}
	log.Warn("camd: factory reset: erased keys, users, settings, events, snapshots and recordings", "files", erased,
		"data", cfg.Data, "recording_path", recDir)
	return nil
}

// cardOut reports whether the recordings' directory is not there to
// erase: missing, or, on a card (recording.require_mount), no card
// mounted there.
func cardOut(cfg Config) bool {
	dir := recordingDir(cfg)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return true
	}
	return requireMount(cfg) && card.New(card.Options{Path: dir, Internal: []string{cfg.Data}}).State().Err != nil
}

// lockCatalog takes the catalog's lock (bbolt's flock) for the time of
// a reset: a camd running on the data (its control socket gone) would
// keep the files open and go on serving them, so the reset refuses.
func lockCatalog(cfg Config) (unlock func(), err error) {
	f, err := os.Open(filepath.Join(cfg.Data, catalogFile))
	if errors.Is(err, fs.ErrNotExist) {
		return func() {}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("device: factory reset: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: its catalog is locked; stop it, or reset through it", ErrRunning)
		}
		return nil, fmt.Errorf("device: factory reset: %w", err)
	}
	return func() { f.Close() }, nil
}

// resetIsPending reports whether a factory reset was begun on cfg and
// not finished.
func resetIsPending(cfg Config) bool {
	_, err := os.Lstat(filepath.Join(cfg.Data, resetPending))
	return err == nil
}

// finishReset finishes a factory reset that stopped half way, before
// anything opens what it was erasing.
func finishReset(cfg Config, log *slog.Logger) error {
	if !resetIsPending(cfg) {
		return nil
	}
	log.Warn("camd: a factory reset was interrupted; finishing it")
	return FactoryReset(cfg, log)
}

// syncDir makes the names created and removed in dir durable, as far as
// the file system can: the erase goes on whatever it answers.
func syncDir(dir string) { durable.SyncDir(dir) }
