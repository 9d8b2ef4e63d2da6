// Package snapshot takes still pictures ("screenshots") of a camera as
// JPEG, from the raw picture before it is encoded: no decoder is needed and
// the picture has none of the encoder's artefacts.
//
// The source offers every picture to a Grabber; Offer costs an atomic load
// unless someone is waiting, in which case the picture is copied once for
// all the waiters and encoded outside the source's goroutine.
package snapshot
