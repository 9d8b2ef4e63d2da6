// Package eventlog keeps the device's event log in the catalog's events
// bucket: motion spans, recording paused and resumed, quarantined volumes.
// Events are keyed by a big-endian sequence number, so the newest are at
// the end; the log keeps the last Options.Max and forgets older ones.
// Delivering events to phones, webhooks and MQTT is another package's
// work; this one only stores and lists them.
package eventlog
