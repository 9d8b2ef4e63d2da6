// Package discovery will announce camd on the LAN (mDNS/DNS-SD
// `_camd._tcp`, ONVIF WS-Discovery) and browse for other cameras. It is
// empty until the discovery issue lands; camd announces nothing today.
package discovery
