// Package lan finds the cameras on the LAN that an NVR could add: camd
// cameras by multicast DNS (discovery.Browse, service _camd._tcp) and
// cameras of any make by ONVIF WS-Discovery (wsd), asked together for one
// query window and merged into one list. A camd camera answers both; it
// is listed once, as camd, since its WS-Discovery endpoint is derived
// from its device ID (wsd.EndpointFor).
//
// What the LAN sends is bounded before it is kept: at most
// Options.MaxCameras cameras (the browse keeps at most 256 instances, the
// probe at most MaxCameras endpoints, reading at most 8 datagrams a
// second from one sender), at most 8 addresses and 4 ONVIF service
// addresses each, names and models clipped. A camera already added (as
// Options.Added says) and the finding device itself are left out.
package lan
