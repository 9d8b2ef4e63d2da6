package wsd

import (
	"net/netip"
	"time"
)

// bucket is a token bucket: rate tokens a second, at most burst saved.
type bucket struct {
	tokens float64
	last   time.Time
}

func (b *bucket) take(now time.Time, rate, burst float64) bool {
	if b.last.IsZero() {
		b.tokens = burst
	} else {
		b.tokens = min(burst, b.tokens+now.Sub(b.last).Seconds()*rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// limiter bounds replies: per sender address and in total. It is not safe
// for concurrent use; the responder calls it from its one read loop.
type limiter struct {
	perSender, perSenderBurst float64
	total, totalBurst         float64
	maxSenders                int

	all     bucket
	senders map[netip.Addr]*bucket
}

func newLimiter(o Options) *limiter {
	return &limiter{
		perSender: o.PerSenderRate, perSenderBurst: float64(o.PerSenderBurst),
		total: o.Rate, totalBurst: float64(o.Burst),
		maxSenders: 1024,
		senders:    map[netip.Addr]*bucket{},
	}
}

// allow reports whether a reply to from may be sent now.
func (l *limiter) allow(now time.Time, from netip.Addr) bool {
	b := l.senders[from]
	if b == nil {
		if len(l.senders) >= l.maxSenders {
			// Forget senders that have refilled; if none has, forget all:
			// the total bucket still bounds what goes out.
			for a, s := range l.senders {
				if now.Sub(s.last).Seconds()*l.perSender >= l.perSenderBurst {
					delete(l.senders, a)
				}
			}
			if len(l.senders) >= l.maxSenders {
				clear(l.senders)
			}
		}
		b = &bucket{}
		l.senders[from] = b
	}
	if !b.take(now, l.perSender, l.perSenderBurst) {
		return false
	}
	return l.all.take(now, l.total, l.totalBurst)
}

// recent remembers the last MessageIDs answered: WS-Discovery senders
// repeat a UDP message (SOAP-over-UDP retransmission) and it is answered
// once.
type recent struct {
	ring [64]string
	next int
	set  map[string]struct{}
}

func (r *recent) seen(id string) bool {
	if r.set == nil {
		r.set = map[string]struct{}{}
	}
	if _, ok := r.set[id]; ok {
		return true
	}
	delete(r.set, r.ring[r.next])
	r.ring[r.next] = id
	r.set[id] = struct{}{}
	r.next = (r.next + 1) % len(r.ring)
	return false
}
