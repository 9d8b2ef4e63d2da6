// Package logwrites reads a block write log in the dm-log-writes format
// (Linux's device-mapper log-writes target; QEMU's blklogwrites block
// driver writes the same format) and replays it onto a copy of the disk
// it started from, up to any entry: the last completed flush is what a
// power cut leaves on a disk that keeps only what was flushed, and every
// entry before it is a crash state a disk may leave too.
//
// The format (all integers little-endian): sector 0 of the log holds the
// super block (magic 0x6a736677736872, version 1, the number of entries,
// the log's sector size); entries follow from sector 1, each a sector
// holding its header (sector, number of sectors, flags, data length)
// followed by the written data, rounded up to whole sectors (none for a
// discard). QEMU rewrites the super block's count at every flush, so the
// entries past that count are the writes logged after the last flush;
// a log whose writer was killed ends with them, perhaps with a torn one
// that Open leaves out.
package logwrites
