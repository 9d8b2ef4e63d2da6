//go:build !(linux && cgo && !camd_nocapture)

package alsa

import (
	"log/slog"
	"time"

	"github.com/camd-project/camd/board"
)

// Speaker is not available in this build.
type Speaker struct{}

var _ board.PlayoutSpeaker = (*Speaker)(nil)

// Open returns ErrUnavailable: this build has no ALSA (no cgo).
func Open(string, *slog.Logger) (*Speaker, error) { return nil, ErrUnavailable }

// Play does nothing.
func (*Speaker) Play([]int16) error { return ErrUnavailable }

// Close does nothing.
func (*Speaker) Close() error { return nil }

// Playout knows nothing.
func (*Speaker) Playout([]int16, time.Time) bool { return false }
