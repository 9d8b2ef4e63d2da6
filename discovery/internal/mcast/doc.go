// Package mcast is what discovery's multicast UDP sockets share, over IPv4
// and IPv6 alike: joining a group on the interfaces chosen, and reading
// datagrams with the interface and the address they came by. The mDNS
// responder and browser (package discovery) and the WS-Discovery responder
// (package wsd) use it; each sets its own socket options.
package mcast
