// Package recordings keeps a camera's recordings: a ring of recording
// volumes (package volume) indexed in the catalog, under a quota.
//
// A Store appends each stream's fragments to that stream's newest volume
// (volumes are per stream), starting a new one as soon as it has no room
// for another fragment of the size just stored (while the next fragment
// is built, not while it waits to be written), and
// deletes a whole volume whenever the bytes it accounts for (the sizes of
// its own files, not what the file system says is used) would pass the
// quota: loop overwrite, checked at every fragment. The volume it takes
// is the oldest of the stream furthest over its share of the quota
// (SetShare; equal parts by default), so that on an NVR a busy camera
// loops within its share and a quiet one keeps its history. Once the
// volumes fill the quota, the next volume is made in that volume's file,
// in place: on FAT, neither the allocation table nor the directory is
// written while recording. A volume is listed as
// being made before its file is touched and as written only once it is
// on stable storage, so that a power cut at any point leaves a file the
// next start knows for its own and makes again. The catalog's recordings bucket lists the volumes with their
// state and the time spans they hold, so that the timeline of a day is
// read from memory and never from the volumes.
//
// Opening a store never fails because of what is on the card: the volume
// that was being written is checked and, if damaged, quarantined with an
// event; a volume the catalog lists but that is gone is dropped with an
// event; a file that is not a camd volume is moved aside, unless it holds
// nothing (a creation a power cut interrupted): removed. FAT short names
// of volume files (VOL-00~5.DB) are the store's too. Write errors (a
// full, missing, read-only or failing card) pause recording with an event
// and the store tries again every few seconds, resuming with an event.
// Errors are told apart by type (errors.Is and As: the card's errno,
// package volume's errors), never by their text; one the store does not
// know pauses recording as "unexpected error", logged as an error, not as
// the card's.
//
// Clip holds the fragments of any time range for reading, in any order,
// as the bytes the recorder appended; media/export makes one MP4 file of
// them, whose byte ranges HTTP range requests read. Only
// Options.MaxReaders clips are open at once (each may map a volume);
// beyond that Clip fails with ErrBusy. Closing the store closes the clips
// still open, so that it holds no file once closed.
//
// On a card (Options.Card, package card), the store records only while
// the card is mounted and writable, and never writes to the device's own
// storage instead: it looks at the card every second, pauses with an
// event when it is missing, gone (a lazy unmount, pulled out, another
// card) or read-only, lets go of its files, and resumes once the card is
// back. Hold lets go of the card for a check or a format. A full card,
// whoever filled it, costs camd's own oldest volumes first: recording
// pauses only with nothing of its own left to delete.
//
// DeleteStream deletes one stream's recordings (an NVR's camera removed
// with them): hidden from the timeline and clips in one catalog
// transaction, then its volumes deleted (and its fragments cut out of
// any volume it shares, in one transaction per volume), a deletion a
// crash interrupted being finished at the next start.
//
// Files names what a store keeps in its directory, for a factory reset
// to erase.
package recordings
