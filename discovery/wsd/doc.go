// Package wsd is camd's WS-Discovery (the ONVIF flavour: SOAP 1.2 over UDP,
// WS-Discovery 2005/04, multicast 239.255.255.250 and ff02::c, port 3702).
//
// A Responder answers Probe messages for the types and scopes it serves
// with a ProbeMatch, sends Hello when it starts and Bye when it stops, so
// that NVRs and apps of other makers find the camera. Probe is the client
// side: it sends one Probe and gathers the ProbeMatches of any maker's
// device.
//
// The responder is built for hostile networks: datagrams over 16 KiB are
// dropped unread, the XML is parsed as a bounded token stream, a reply is
// never much larger than the probe that asked for it, and replies are rate
// limited per sender and in total. Nothing that identifies the hardware
// (MAC, serial) is ever put in a message: the endpoint UUID is derived
// from camd's random device ID.
package wsd
