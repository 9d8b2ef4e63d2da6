package recordings

import (
	"errors"
	"io/fs"
	"syscall"

	"github.com/camd-project/camd/storage/card"
	"github.com/camd-project/camd/storage/volume"
)

// trouble is what an error means to the store, told by its type, never
// by its text: the card's (an errno of the system, kept through every
// wrap), the volumes' (package volume's errors), the fragment's, or
// unexpected: none of these, which is not taken for the card's.
type trouble int

const (
	fine         trouble = iota // no error
	unexpected                  // a bug: logged as an error, "unexpected error"
	cardFull                    // ENOSPC, EDQUOT
	cardReadOnly                // EROFS
	cardMissing                 // ENOENT, ENODEV, ENXIO: the card or its directory is gone
	cardFailing                 // EIO: reads or writes fail
	cardOther                   // any other errno, or a volume another process holds
	quotaSmall                  // the quota holds no volume
	damaged                     // a volume's structure is wrong: quarantined
	foreign                     // not a camd volume: moved aside
	newer                       // a newer camd's volume: left alone
	refused                     // a fragment the store cannot hold
	noCard                      // recording.path is on a card, and none is mounted there
	cardBusy                    // the card is being checked or formatted (Hold)
)

// card reports whether the trouble is the card's: it passes, or the card
// is replaced, and nothing on it is damaged for it.
func (k trouble) card() bool { return k >= cardFull && k <= cardOther }

// classify tells what err means to the store.
func classify(err error) trouble {
	var errno syscall.Errno
	switch {
	case err == nil:
		return fine
	case errors.Is(err, ErrUnexpected):
		return unexpected
	case errors.Is(err, ErrFragment), errors.Is(err, volume.ErrTooLarge):
		return refused
	case errors.Is(err, errCardBusy):
		return cardBusy
	case errors.Is(err, card.ErrNoCard):
		return noCard
	case errors.Is(err, errQuotaTooSmall):
		return quotaSmall
	case errors.Is(err, volume.ErrDamaged):
		return damaged
	case errors.Is(err, volume.ErrNotVolume):
		return foreign
	case errors.Is(err, volume.ErrNewerFormat):
		return newer
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return cardFull
	case errors.Is(err, syscall.EROFS):
		return cardReadOnly
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENODEV), errors.Is(err, syscall.ENXIO):
		return cardMissing
	case errors.Is(err, syscall.EIO):
		return cardFailing
	case errors.Is(err, volume.ErrLocked), errors.As(err, &errno):
		return cardOther
	}
	return unexpected
}

// reason names the trouble in words for the owner.
func reason(err error) string {
	switch classify(err) {
	case cardFull:
		return "storage full"
	case cardReadOnly:
		return "storage read-only"
	case cardMissing:
		return "storage missing"
	case cardFailing:
		return "storage failing"
	case quotaSmall:
		return "quota too small"
	case noCard:
		return "no card"
	case cardBusy:
		return "card busy"
	case unexpected:
		return "unexpected error"
	}
	return "storage error"
}
