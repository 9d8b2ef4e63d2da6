package ratelimit

import (
	"net/netip"
	"testing"
	"time"
)

func count(l *Limiter, now time.Time, n int, addr func(i int) netip.Addr) int {
	got := 0
	for i := range n {
		if l.Allow(now, addr(i)) {
			got++
		}
	}
	return got
}

// camd's limits: 2 a second (burst 4) to one address, 10 a second (burst
// 20) in all.
func limits(maxAddrs int) Options {
	return Options{PerAddrRate: 2, PerAddrBurst: 4, Rate: 10, Burst: 20, MaxAddrs: maxAddrs}
}

func TestLimiter(t *testing.T) {
	now := time.Unix(1000, 0)
	a := netip.MustParseAddr("fe80::2%eth0")
	many := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}) }

	t.Run("one address", func(t *testing.T) {
		l := New(limits(0))
		if n := count(l, now, 100, func(int) netip.Addr { return a }); n != 4 {
			t.Fatalf("one address got %d replies at once, want the burst of 4", n)
		}
		if l.Allow(now, a.WithZone("eth1")) {
			t.Fatal("another zone of the same address got a reply")
		}
		later := now.Add(500 * time.Millisecond)
		if !l.Allow(later, a) || l.Allow(later, a) {
			t.Fatal("one address does not get one reply per 500 ms")
		}
	})

	t.Run("many addresses", func(t *testing.T) {
		l := New(limits(256))
		if n := count(l, now, 1000, many); n != 20 {
			t.Fatalf("%d replies to 1000 addresses at once, want the total burst of 20", n)
		}
		if n := count(l, now.Add(time.Second), 1000, func(i int) netip.Addr { return many(1000 + i) }); n != 10 {
			t.Fatalf("%d replies to 1000 addresses a second later, want 10", n)
		}
		if len(l.addrs) > l.o.MaxAddrs {
			t.Fatalf("%d addresses remembered, want at most %d", len(l.addrs), l.o.MaxAddrs)
		}
	})

	t.Run("forgets refilled addresses", func(t *testing.T) {
		l := New(limits(2))
		l.Allow(now, many(0))
		l.Allow(now.Add(1900*time.Millisecond), many(1))
		// many(0) has refilled (4 tokens at 2 a second), many(1) has not
		l.Allow(now.Add(2*time.Second), many(2))
		if _, ok := l.addrs[many(0)]; ok || len(l.addrs) != 2 {
			t.Fatalf("remembered %v, want many(1) and many(2)", l.addrs)
		}
	})
}
