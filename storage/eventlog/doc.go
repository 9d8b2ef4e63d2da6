// Package eventlog keeps the device's event log in the catalog's events
// bucket: the one event model (Event) of motion, recording and storage
// trouble, users and settings. Events are keyed by a big-endian sequence
// number, so the newest are at the end and an ID never comes back; the
// log keeps the last Options.Max and forgets older ones. Events added
// together share one commit, and Options.Notify hears of each once it is
// stored, in ID order: device/events streams them from there. Delivering
// them to phones, webhooks and MQTT is other packages' work; this one
// stores, numbers and selects them (Query).
package eventlog
