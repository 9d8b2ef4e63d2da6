// Package metrics exposes camd's counters in the Prometheus text format
// (GET /metrics, docs/observability.md).
//
// Nothing is counted for metrics on the media path: the collector reads
// the counters the components keep anyway (the hub's, the WHEP server's,
// the recording store's, the event sinks': Web Push, webhooks, MQTT)
// when a scrape asks, so a frame costs what it
// cost before. Consumers are labelled by kind (viewer, recorder), never
// by session, so the series stay few whatever the viewers do.
//
// Tokens is the metrics token: a secret the owner makes for a
// Prometheus server, shown once, kept as its SHA-256 only.
package metrics
