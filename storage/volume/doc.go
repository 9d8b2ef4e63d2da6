// Package volume stores recorded fragments in recording volumes: bbolt
// files of bounded size (256 MiB by default), each holding the fragments
// of a stretch of time for one or more streams.
//
// A fragment is stored as a nested bucket under its key, big-endian
// (stream uint32, start Unix ns uint64), in the "frags" bucket; the nested
// bucket holds the data under "m", and its sequence number packs the
// size, duration and flags so that listing a volume reads only the parent
// bucket's pages. A fragment's own pages are written once, in the
// transaction that adds it, and never rewritten: a plain value would share
// a leaf page with its neighbours and be copied again with every append.
// The "inits" bucket holds the init segments, keyed like the first fragment
// they apply to; "camd" holds the magic, format, volume number and
// creation time. docs/storage.md describes the format in full.
//
// Appends go in key order; each append, of one fragment or of a batch
// (AppendBatch), is one fsynced transaction. Only the
// newest volume is written; older ones are opened read-only when needed,
// and retention deletes a whole volume with one unlink (Remove) or makes
// the next volume in its file, in place (Reuse). Create and Reuse write a
// new volume's first pages in one write and fsync the file and its
// directory: when they return, the volume and its name survive a power
// cut. Which file is being made is the caller's to remember: nothing in
// a half-written file can be trusted (Unfinished tells one that holds
// nothing at all).
//
// Opening a damaged file must not kill the process: bbolt reads through a
// memory mapping and trusts the page numbers it finds, so Open and Check
// first walk the page tree with ordinary reads and refuse a file whose
// pages point outside it (ErrDamaged), or that is not a camd volume at all
// (ErrNotVolume). Nor must a page the card cannot read: bbolt's read of it
// through the mapping faults, and every use of the mapping turns that
// fault into an I/O error (EIO) on the goroutine that reads (fault.go).
package volume
