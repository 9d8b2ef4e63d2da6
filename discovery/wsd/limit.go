package wsd

import "github.com/camd-project/camd/discovery/internal/ratelimit"

// newLimiter bounds replies as o says: per sender address and in total.
// It is not safe for concurrent use; the responder holds its mutex.
func newLimiter(o Options) *ratelimit.Limiter {
	return ratelimit.New(ratelimit.Options{
		PerAddrRate: o.PerSenderRate, PerAddrBurst: o.PerSenderBurst,
		Rate: o.Rate, Burst: o.Burst,
	})
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
