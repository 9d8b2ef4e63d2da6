// Package updatetest serves signed update feeds over HTTPS on loopback,
// good and malicious, and keeps a fake A/B slot layout in a directory,
// for the update package's tests and the daemon's.
package updatetest
