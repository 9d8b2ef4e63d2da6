// Package device is camd's core: the configuration, the device's identity
// and the one place where every component is built, wired and closed
// (Daemon), with the components that are the daemon's own: the live
// source that settings reshape, recording, the board's behaviour,
// discovery, the control socket, the MQTT client's wiring, the update
// package's wiring (its health check and the update_check setting), the
// WHIP publish to the owner's SFU that the whip_* settings drive
// (docs/whip.md), and observability's (the log ring behind the daemon's logger, crash
// reports, the metrics' sources). The HTTPS API's handlers are in
// device/api; Daemon builds them from these components.
package device
