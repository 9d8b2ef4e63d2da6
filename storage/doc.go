// Package storage will hold the catalog (settings, users, events, the
// recording index) and the recording volumes, all in bbolt. It is empty
// until the recording issue lands; camd records nothing today.
package storage
