package update

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/camd-project/camd/internal/durable"
)

// state is what the updater keeps across restarts (state.json in its
// directory, replaced whole so that a power cut leaves the old or the
// new one).
type state struct {
	// LastSerial, LastSum and LastIssued describe the newest feed
	// accepted: a feed with a lower serial, or the same serial and other
	// content, is refused; LastIssued is the earliest time the clock can
	// be (a camera without a clock battery boots in 1970).
	LastSerial uint64    `json:"last_serial"`
	LastSum    string    `json:"last_sum,omitempty"`
	LastIssued time.Time `json:"last_issued,omitzero"`
	// Floor is the highest version confirmed good on this device: no
	// feed may offer less (downgrade), even after a rollback.
	Floor string `json:"floor,omitempty"`
	// Available is the update the last check offered, if any.
	Available *Manifest `json:"available,omitempty"`
	// Pending is an update installed and rebooted into, not yet
	// confirmed good.
	Pending *Pending `json:"pending,omitempty"`
	// Failed is the last version rolled back.
	Failed    string    `json:"failed,omitempty"`
	LastCheck time.Time `json:"last_check,omitzero"`
}

// Pending is an update handed to the installer and waiting for its
// confirmation after the reboot.
type Pending struct {
	Version   string    `json:"version"`
	From      string    `json:"from"`
	Installed time.Time `json:"installed"`
}

const stateFile = "state.json"

// errBadState: state.json is not JSON.
var errBadState = errors.New("update: damaged state")

func loadState(dir string) (state, error) {
	var s state
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("update: %w", err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("%w: %s: %v", errBadState, stateFile, err)
	}
	return s, nil
}

func (s state) save(dir string) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("update: %w", err)
	}
	if err := durable.WriteFile(filepath.Join(dir, stateFile), b, 0o600); err != nil {
		return fmt.Errorf("update: %w", err)
	}
	return nil
}
