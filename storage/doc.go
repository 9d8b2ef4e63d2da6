// Package storage keeps camd's data on the device's flash or SD card in
// bbolt files.
//
// The Catalog is one small bbolt file of precious records: users and
// pairing counters, settings, events and the recording index. Each
// package that owns a kind of record owns its bucket in the catalog; this
// package opens the file, creates the buckets, records the schema version,
// checks consistency and moves a file that bbolt says is damaged aside
// so that camd starts anyway (OpenReplacing, which snapshots shares); a
// file that cannot be read is not damaged, and is left alone (OpenBolt
// tells the two apart). Sub-packages keep the
// rest: volume (recording volumes, bounded bbolt files of fragments),
// recordings (the ring of volumes, its index in the catalog, quota,
// timeline and clips of fragments for exports), eventlog (the events
// bucket) and snapshots (saved pictures). Storage keeps bytes: what a
// fragment holds (fragmented MP4) is media's to read, and nothing here
// imports media. docs/storage.md describes every file.
package storage
