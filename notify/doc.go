// Package notify holds the sinks that carry events off the device when
// the owner turned them on: notify/webpush (Web Push to phones that are
// not connected) and notify/webhooks (signed HTTP callbacks). Each is a
// subscription to the event bus (device/events) that resumes from the
// last event it handled, kept in the catalog (docs/push.md).
package notify
