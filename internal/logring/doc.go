// Package logring keeps camd's structured log on the device: a bounded
// ring of JSON lines in a directory of the data directory, read back by
// the owner (GET /api/v1/logs) and by crash reports.
//
// The ring is two segment files of half its size each; lines are
// appended to the newer one, and when it is full the older one is
// removed and a new one started. Appending never rewrites what is in a
// file, so a power cut or a crash can cut only the last line short
// (skipped when read, cut off at the next Open); a goroutine fsyncs the
// segment after writes, so a power cut loses at most the lines written
// during the last fsync.
//
// Redact wraps a handler so that no secret reaches the log (by
// attribute name and by type, see Secret); Tee sends each record to
// several handlers (the init system's log and the ring).
package logring
