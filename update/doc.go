// Package update keeps camd up to date, safely: it checks a signed update
// feed (a JSON manifest signed with minisign, whose ed25519 public keys are
// baked into the build), downloads the image it names with progress and
// resume, verifies the image's SHA-256 while it streams, hands it to the
// A/B installer hook, reboots through a hook, and at the next start marks
// the new slot good once a health check passes, or rolls back when none
// passes within the confirmation timeout.
//
// A feed is refused, with an event, when its signature is not one of the
// build's keys, it is expired, it is older than the last one seen
// (replayed or frozen), it is for another product, or it offers a version
// below the one running; an image is refused when its download is
// truncated or its hash is wrong. docs/updates.md describes the feed, the
// hooks and why minisign rather than TUF.
//
// Nothing is contacted until the owner turns checking on (SetEnabled);
// then the feed is checked daily with jitter, and the owner applies an
// offered update (Apply).
package update
