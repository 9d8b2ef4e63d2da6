// Package api is camd's HTTPS API: one handler type per feature (Web,
// Pairing, Users, Live, Recordings, Snapshots, Events, Settings, Storage,
// Update), each
// holding only what it uses through small interfaces declared beside it,
// and the one routes table that puts every route behind the credential
// check its Role needs. Stream routes (live view: WHEP, snapshot.jpg,
// MJPEG) also take a stream key, as a bearer token or HTTP Basic; every
// other route refuses one.
//
// The package knows HTTP and JSON, not how camd is built: the daemon
// (package device) builds each feature from its components, and tests
// build them from fakes.
package api
