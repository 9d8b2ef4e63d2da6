// Package webpush sends events to phones that are not connected: Web
// Push (RFC 8030) with the message encrypted for the subscription's
// keys (RFC 8291, aes128gcm) and the device identified by its own VAPID
// key (RFC 8292), written on the standard library (crypto/ecdh,
// crypto/hkdf, AES-GCM, ECDSA).
//
// A paired user's browser (or a UnifiedPush distributor) subscribes an
// endpoint; each user chooses which event types push (the doorbell and
// calls by default, motion off and, when on, at most once an interval);
// viewers get only what they may see (events.Visible). Endpoints must
// be https and public: camd refuses to connect to a loopback, private
// or link-local address, checked when the connection is made, so a
// paired viewer cannot turn the camera into a probe of the LAN. A push
// service that answers 404 or 410 ends the subscription.
package webpush
