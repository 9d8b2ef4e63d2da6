// Package settings is the owner's settings: one typed model (Settings)
// with defaults and validation that names the field, the value and what
// is allowed, kept in the catalog's settings bucket by Store.
//
// The stored record is versioned and holds only the values the owner
// changed; everything else follows the defaults, which the device derives
// from its configuration. Applying a change (muting the microphone,
// restarting the encoder at a new size) is the device's job: Patch
// returns the settings before and after, and Changed lists what moved.
package settings
