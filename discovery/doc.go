// Package discovery announces camd on the LAN and finds cameras on it.
//
// An Announcer publishes the DNS-SD service _camd._tcp over multicast DNS
// with a responder of its own (github.com/miekg/dns), which probes for its
// instance name before it announces it (RFC 6762 §8: a name another host
// holds is given up for the next, "Name (2)", at most one probe attempt
// per 5 s once 15 conflicts came within 10 s) and answers within RFC
// 6762's bounds: each record multicast at most once a second per
// interface, unicast replies only to on-link addresses, at most 3 × the
// query's size and rate-limited. Unless turned off, it also answers ONVIF
// WS-Discovery probes (package discovery/wsd), on the interfaces chosen
// from camd's listen address: none when camd listens on loopback, every
// multicast-capable interface when it listens on all addresses, the
// interface carrying the address otherwise, or an explicit list. It
// re-announces when the name, the pairing state or an address changes, and
// says goodbye when it stops. The TXT record carries no MAC, serial or
// secret; docs/discovery.md lists its keys.
//
// Browse lists the cameras that answer on the LAN, with their addresses,
// port and TXT fields, and tells those already added from the others. It
// is a multicast DNS querier of its own (github.com/miekg/dns), so that it
// also reports cameras that leave or change.
package discovery
