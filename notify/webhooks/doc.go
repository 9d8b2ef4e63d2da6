// Package webhooks delivers events to the owner's URLs as signed JSON
// POSTs (Standard Webhooks: webhook-id, webhook-timestamp,
// webhook-signature "v1,<base64 HMAC-SHA256 of id.timestamp.body>").
//
// The sink subscribes to the event bus from the last event it queued
// (kept in the catalog) and, in the same transaction, queues one
// delivery per enabled hook that wants the event: the queue is in the
// catalog, bounded, and survives a restart or kill -9. Deliveries are
// retried with exponential backoff and jitter; a hook that has failed
// for 24 h is disabled (an event says so). Each hook keeps a log of its
// last deliveries. docs/push.md describes it for owners.
package webhooks
