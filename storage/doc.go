// Package storage keeps camd's data on the device's flash or SD card in
// bbolt files.
//
// The Catalog is one small bbolt file of precious records: users and
// pairing counters, settings, events and the recording index. Each
// package that owns a kind of record owns its bucket in the catalog; this
// package opens the file, creates the buckets, records the schema version,
// checks consistency and quarantines a damaged file so that camd always
// starts. Sub-packages keep the rest: volume (recording volumes, bounded
// bbolt files of video fragments), recordings (the ring of volumes, its
// index in the catalog, quota, timeline and export), eventlog (the events
// bucket) and snapshots (saved pictures). docs/storage.md describes every
// file.
package storage
