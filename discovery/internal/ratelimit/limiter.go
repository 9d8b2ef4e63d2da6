package ratelimit

import (
	"net/netip"
	"time"

	"golang.org/x/time/rate"
)

// Options set the token buckets: rates in replies a second, bursts in
// replies at once. The rates and bursts are required (the responders hold
// their defaults).
type Options struct {
	// PerAddrRate and PerAddrBurst bound replies to one address.
	PerAddrRate  float64
	PerAddrBurst int
	// Rate and Burst bound all replies.
	Rate  float64
	Burst int
	// MaxAddrs bounds the addresses remembered (default 1024).
	MaxAddrs int
}

// Limiter bounds replies per address and in total; every bucket starts
// full. It is not safe for concurrent use.
type Limiter struct {
	o     Options
	all   *rate.Limiter
	addrs map[netip.Addr]*rate.Limiter
}

// New returns a Limiter with the limits of o.
func New(o Options) *Limiter {
	if o.MaxAddrs <= 0 {
		o.MaxAddrs = 1024
	}
	return &Limiter{
		o:     o,
		all:   rate.NewLimiter(rate.Limit(o.Rate), o.Burst),
		addrs: map[netip.Addr]*rate.Limiter{},
	}
}

// Allow reports whether a reply to addr (its zone aside) may be sent at
// now, and counts it if so.
func (l *Limiter) Allow(now time.Time, addr netip.Addr) bool {
	addr = addr.WithZone("")
	b := l.addrs[addr]
	if b == nil {
		if len(l.addrs) >= l.o.MaxAddrs {
			// Forget the addresses whose bucket has refilled (a new one
			// starts full); if none has, forget all: the total bucket
			// still bounds what goes out.
			for a, s := range l.addrs {
				if s.TokensAt(now) >= float64(l.o.PerAddrBurst) {
					delete(l.addrs, a)
				}
			}
			if len(l.addrs) >= l.o.MaxAddrs {
				clear(l.addrs)
			}
		}
		b = rate.NewLimiter(rate.Limit(l.o.PerAddrRate), l.o.PerAddrBurst)
		l.addrs[addr] = b
	}
	return b.AllowN(now, 1) && l.all.AllowN(now, 1)
}
