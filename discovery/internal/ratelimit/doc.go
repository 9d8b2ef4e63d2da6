// Package ratelimit bounds the replies a discovery responder sends: a
// token bucket per address and one for all addresses, so that a flood of
// queries, from one sender or from many spoofed ones, draws a bounded
// number of replies. The mDNS responder (its unicast replies) and the
// WS-Discovery responder share it.
package ratelimit
