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
// Pairing is possible only while a window is open (unpaired, or for 15
// minutes after the owner or the pair button asks), one exchange at a
// time; 20 failures close the window and 100 in the device's lifetime lock
// pairing until factory reset. docs/pairing.md is the specification.
//
// The Manager commits every change to the catalog before it takes effect,
// so a failed write changes nothing, and checks credentials against the
// state last committed, without waiting for a write in progress.
package pairing
