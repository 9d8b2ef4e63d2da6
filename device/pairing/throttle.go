package pairing

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"
)

// ErrRetryLater refuses an attempt from an address that failed recently
// and has not waited its delay yet. The error is a *RetryError, which
// says how long to wait.
var ErrRetryLater = errors.New("pairing: too many failed attempts from this address")

// RetryError refuses an attempt until After has passed (HTTP 429 with
// Retry-After).
type RetryError struct {
	After time.Duration
}

func (e *RetryError) Error() string {
	return fmt.Sprintf("%v; try again in %s", ErrRetryLater, e.After)
}

func (e *RetryError) Unwrap() error { return ErrRetryLater }

// RetryAfter returns how long the caller of a refused attempt must wait,
// rounded up to whole seconds (at least one), as Retry-After wants it.
func RetryAfter(err error) (time.Duration, bool) {
	var re *RetryError
	if !errors.As(err, &re) {
		return 0, false
	}
	return max(time.Second, (re.After + time.Second - 1).Truncate(time.Second)), true
}

// throttle slows failed pairing attempts per source address: after an
// address's n-th failure it may not start or finish an exchange for
// base·2^(n-1), at most max. It lives in memory only (a restart forgets
// it; the failure counters in the catalog do not forget). An address is
// forgotten max after its delay ended, and at most limit addresses are
// kept: when full, the one forgotten soonest goes first.
//
// Only counted failures (a wrong proof inside a live exchange) reach the
// throttle, so it grows no faster than the window's failure limit lets
// it.
type throttle struct {
	base, max time.Duration
	limit     int

	mu    sync.Mutex
	addrs map[netip.Addr]*penalty
}

type penalty struct {
	failures int
	until    time.Time // no attempt before
	forget   time.Time // dropped after
}

func newThrottle(base, longest time.Duration, limit int) *throttle {
	return &throttle{base: base, max: longest, limit: limit, addrs: map[netip.Addr]*penalty{}}
}

// key makes the same host one key however its address was written.
func addrKey(a netip.Addr) netip.Addr { return a.Unmap().WithZone("") }

// wait returns how long a is still to wait at now (0: it may try).
func (t *throttle) wait(a netip.Addr, now time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.addrs[addrKey(a)]
	if p == nil {
		return 0
	}
	if now.After(p.forget) {
		delete(t.addrs, addrKey(a))
		return 0
	}
	return max(0, p.until.Sub(now))
}

// failed records a failure from a at now and returns the delay it
// imposes.
func (t *throttle) failed(a netip.Addr, now time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := addrKey(a)
	p := t.addrs[k]
	if p == nil || now.After(p.forget) {
		t.sweep(now)
		p = &penalty{}
		t.addrs[k] = p
	}
	p.failures++
	d := t.max
	if shift := p.failures - 1; shift < 32 && t.base<<shift < t.max && t.base<<shift > 0 {
		d = t.base << shift
	}
	p.until = now.Add(d)
	p.forget = p.until.Add(t.max)
	return d
}

// sweep drops forgotten addresses and, if the map is still full, the
// addresses forgotten soonest, to make room for one more. The caller
// holds mu.
func (t *throttle) sweep(now time.Time) {
	for k, p := range t.addrs {
		if now.After(p.forget) {
			delete(t.addrs, k)
		}
	}
	for len(t.addrs) >= t.limit {
		var oldest netip.Addr
		var at time.Time
		for k, p := range t.addrs {
			if at.IsZero() || p.forget.Before(at) {
				oldest, at = k, p.forget
			}
		}
		delete(t.addrs, oldest)
	}
}

// reset forgets every address.
func (t *throttle) reset() {
	t.mu.Lock()
	defer t.mu.Unlock()
	clear(t.addrs)
}

// tracked is how many addresses the throttle holds and has not
// forgotten.
func (t *throttle) tracked() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n, now := 0, time.Now()
	for _, p := range t.addrs {
		if !now.After(p.forget) {
			n++
		}
	}
	return n
}
