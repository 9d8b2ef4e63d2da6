package recordings

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	berrors "go.etcd.io/bbolt/errors"

	"github.com/camd-project/camd/storage/volume"
)

// TestErrorsByType: the store tells what an error means by its type
// (errors.Is and As, through every wrap), never by its text, and an error
// it does not know is its own kind, "unexpected error", not the card's.
func TestErrorsByType(t *testing.T) {
	path := func(errno syscall.Errno) error {
		return fmt.Errorf("volume: append to vol-1.db: %w", &fs.PathError{Op: "write", Path: "vol-1.db", Err: errno})
	}
	for _, c := range []struct {
		name   string
		err    error
		want   trouble
		reason string
	}{
		{"ENOSPC", path(syscall.ENOSPC), cardFull, "storage full"},
		{"EDQUOT", path(syscall.EDQUOT), cardFull, "storage full"},
		{"EROFS", path(syscall.EROFS), cardReadOnly, "storage read-only"},
		{"ENOENT", path(syscall.ENOENT), cardMissing, "storage missing"},
		{"ENODEV", path(syscall.ENODEV), cardMissing, "storage missing"},
		{"ENXIO", syscall.ENXIO, cardMissing, "storage missing"},
		{"EIO", path(syscall.EIO), cardFailing, "storage failing"},
		{"a fault in the mapping", fmt.Errorf("volume: x: a page could not be read (fault at 0x1): %w", syscall.EIO), cardFailing, "storage failing"},
		{"ENOSPC under a paused store's wraps", fmt.Errorf("%w: %s: %w", ErrPaused, "storage full", path(syscall.ENOSPC)), cardFull, "storage full"},
		{"EACCES", path(syscall.EACCES), cardOther, "storage error"},
		{"a volume another process holds", fmt.Errorf("%w: vol-1.db", volume.ErrLocked), cardOther, "storage error"},
		{"quota", fmt.Errorf("%w: quota 1 bytes", errQuotaTooSmall), quotaSmall, "quota too small"},
		{"damaged", fmt.Errorf("%w: vol-1.db: %w", volume.ErrDamaged, berrors.ErrInvalid), damaged, "storage error"},
		{"foreign", fmt.Errorf("%w: vol-1.db: %w", volume.ErrNotVolume, berrors.ErrInvalid), foreign, "storage error"},
		{"newer", fmt.Errorf("%w: vol-1.db", volume.ErrNewerFormat), newer, "storage error"},
		{"a fragment too large", fmt.Errorf("%w: 1 bytes", volume.ErrTooLarge), refused, "storage error"},
		{"a fragment out of range", fmt.Errorf("%w: at 1900", ErrFragment), refused, "storage error"},
		// Errors that text alone would have made the card's.
		{"no errno, the words of ENOSPC", errors.New("file resize error: truncate vol-1.db: no space left on device"), unexpected, "unexpected error"},
		{"no errno, the words of EIO", fmt.Errorf("sync: %s", syscall.EIO), unexpected, "unexpected error"},
		{"bbolt's own", fmt.Errorf("volume: append to vol-1.db: %w", berrors.ErrDatabaseNotOpen), unexpected, "unexpected error"},
		{"anything else", errors.New("recordings: something new"), unexpected, "unexpected error"},
		{"marked unexpected", fmt.Errorf("%w: %w", ErrUnexpected, path(syscall.EIO)), unexpected, "unexpected error"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := classify(c.err); got != c.want {
				t.Errorf("classify(%v) = %d, want %d", c.err, got, c.want)
			}
			if got := reason(c.err); got != c.reason {
				t.Errorf("reason(%v) = %q, want %q", c.err, got, c.reason)
			}
			if card := c.want >= cardFull && c.want <= cardOther; classify(c.err).card() != card {
				t.Errorf("%v is the card's: %v, want %v", c.err, classify(c.err).card(), card)
			}
		})
	}
	if classify(nil) != fine {
		t.Error("nil is trouble")
	}
}

// TestUnexpectedErrorIsNotTheCards: the volume's handle fails with an
// error of no errno (closed behind the store's back, as a bug would). Recording pauses as "unexpected error", logged as an error,
// and the Append's error says so; the retry 5 s later (fake time, in a
// synctest bubble) opens the volume again and recording resumes.
func TestUnexpectedErrorIsNotTheCards(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs bytes.Buffer
		e := newEnv(t, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		rec := &source{Start: day, Audio: true}
		e.record(rec.fragments(1, 5*time.Second))
		e.store.handleMu.RLock()
		e.store.writers[1].v.Close()
		e.store.handleMu.RUnlock()

		err := e.store.Append(rec.fragments(1, time.Second)[0])
		if !errors.Is(err, ErrPaused) || !errors.Is(err, ErrUnexpected) || !errors.Is(err, fs.ErrClosed) {
			t.Fatalf("append to a closed handle: %v", err)
		}
		if st := e.store.Stats(); st.Paused != "unexpected error" {
			t.Fatalf("paused as %q", st.Paused)
		}
		if p := e.eventsOf(EventPaused); len(p) != 1 || p[0].Data["reason"] != "unexpected error" {
			t.Fatalf("paused events: %+v", p)
		}
		if !strings.Contains(logs.String(), "level=ERROR") {
			t.Fatalf("the unexpected error was not logged as an error:\n%s", logs.String())
		}
		// Until the retry, the store does not try again.
		if err := e.store.Append(rec.fragments(1, time.Second)[0]); !errors.Is(err, ErrPaused) {
			t.Fatalf("append before the retry: %v", err)
		}
		time.Sleep(5 * time.Second)
		after := rec.fragments(1, 3*time.Second)
		e.record(after)
		if len(e.eventsOf(EventResumed)) != 1 || e.store.Paused() != nil {
			t.Fatalf("after the retry: events %v, paused %v", e.eventKinds(), e.store.Paused())
		}
		if e.hasEvent(EventQuarantined) {
			t.Fatal("an unexpected error quarantined the volume")
		}
	})
}

// TestRefusedFragmentKeepsRecording: a fragment the store cannot hold (a
// bug upstream, not the card) is refused with ErrFragment; recording is
// not paused and goes on in the same volume.
func TestRefusedFragmentKeepsRecording(t *testing.T) {
	e := newEnv(t, Options{})
	rec := &source{Start: day}
	e.record(rec.fragments(1, 3*time.Second))
	for _, bad := range []Fragment{
		{Stream: 1, Start: day.Add(time.Hour), Duration: volume.MaxDuration + time.Second, Key: true, Data: []byte("x")},
		{Stream: 1, Start: time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC), Duration: time.Second, Key: true, Data: []byte("x")},
		{Stream: 1, Start: day.Add(time.Hour), Duration: -time.Second, Key: true, Data: []byte("x")},
	} {
		if err := e.store.Append(bad); !errors.Is(err, ErrFragment) || errors.Is(err, ErrPaused) {
			t.Fatalf("a fragment of %v at %v: %v", bad.Duration, bad.Start, err)
		}
	}
	e.record(rec.fragments(1, 3*time.Second))
	if st := e.store.Stats(); st.Paused != "" || st.Volumes != 1 || st.Dropped != 3 || e.hasEvent(EventPaused) {
		t.Fatalf("after refused fragments: %+v, events %v", st, e.eventKinds())
	}
}
