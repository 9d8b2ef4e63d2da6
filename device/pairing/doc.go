// Package pairing makes a phone the camera's owner, and every later user
// someone the owner invited.
//
// The camera shows a QR code whose Payload carries its device ID, the
// SHA-256 fingerprint of its TLS certificate, a one-time secret and a
// discriminator. The phone connects over HTTPS pinned to that fingerprint
// (it aborts before sending anything to another certificate), asks for a
// nonce, and proves it holds the secret with an HMAC over the nonce and
// the name it registers; the secret itself never crosses the network. The
// device answers with a bearer credential, of which it keeps only the
// SHA-256. The secret changes after every successful pairing.
//
// Pairing with the setup code is possible only while a window is open
// (unpaired, or for 15 minutes after the owner or the pair button asks).
// Exchanges keep no state on the device: a nonce is sealed to the address
// it was given to, so any number run at once and a stranger holds none
// of them. Only a wrong proof inside a live exchange is a failure: 20
// close the window, 100 in the device's lifetime lock setup pairing until
// factory reset, and each delays its address (1 s, doubling, at most
// 5 min, in memory). A request without a live exchange counts against
// nothing and writes nothing. Invitations are one-time, valid at most 7
// days, listed for owners, cancellable, and die with the owner who made
// them. docs/pairing.md is the specification; docs/security.md the
// threat model.
//
// Stream keys (keys.go) are view-only credentials an owner makes for a
// user or a device (an NVR): shown once, revocable, dying with their user
// and maker. Their secrets are derived from a root kept outside the
// catalog, so that digest protocols (RTSP, ONVIF) can be verified while
// the catalog holds no secret; VerifyKey is the one check of a key.
//
// The Manager commits every change to the catalog before it takes effect,
// so a failed write changes nothing, and checks credentials against the
// state last committed, without waiting for a write in progress.
package pairing
