// Package device is camd's core: the configuration, the device's identity,
// the HTTPS API and the one place where every component is built, wired
// and closed (Daemon).
package device
