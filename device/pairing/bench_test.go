package pairing

import (
	"errors"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// BenchmarkAuthenticateWhileFailing checks a credential, as every request
// does, while another goroutine writes failed pairing attempts to the
// catalog (each one an fsynced commit) as fast as it can, as a guessing
// attacker with a live exchange from a new address each time would (the
// limits are raised so that the window never closes). The checks arrive about every 100 µs, independently of
// the commits, as requests do; the benchmark reports their latency (p50,
// p99, max) and how many failures were written a second. Its ns/op, the
// time between checks, is not reported; B/op and allocs/op count the
// writer's allocations too.
func BenchmarkAuthenticateWhileFailing(b *testing.B) {
	cat := catalogAt(b, filepath.Join(b.TempDir(), "catalog.db"))
	defer cat.Close()
	m, err := Open(cat, Options{DeviceID: testDeviceID, WindowFailures: 1 << 30, LifetimeFailures: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	secret := m.SetupPayload(netip.AddrPort{}).Secret
	nonce, err := m.Start("", phone)
	if err != nil {
		b.Fatal(err)
	}
	_, token, err := m.Finish(FinishRequest{Nonce: nonce, Name: "owner", Proof: Proof(secret[:], testDeviceID, nonce, "owner"), From: phone})
	if err != nil {
		b.Fatal(err)
	}
	if err := m.OpenWindow(); err != nil {
		b.Fatal(err)
	}

	failures := 0
	stop := background(1, func() bool {
		from := stranger(failures)
		nonce, err := m.Start("", from)
		if err == nil {
			_, _, err = m.Finish(FinishRequest{Nonce: nonce, Name: "mallory", Proof: []byte("wrong"), From: from})
		}
		if !errors.Is(err, ErrBadProof) {
			b.Errorf("attempt %d: %v", failures, err)
			return false
		}
		failures++
		return true
	})

	lat := make([]time.Duration, 0, b.N)
	start := time.Now()
	for b.Loop() {
		t0 := time.Now()
		if _, err := m.Authenticate(token); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
		time.Sleep(100 * time.Microsecond)
	}
	elapsed := time.Since(start)
	stop()

	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
	b.ReportMetric(float64(lat[len(lat)-1].Nanoseconds()), "max-ns")
	b.ReportMetric(float64(failures)/elapsed.Seconds(), "failures/s")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkGarbageFinish sends finish requests that carry no live
// exchange (random nonces, from ever new addresses), as a stranger
// flooding pair/finish would. It reports the catalog commits they caused
// (there must be none) besides the time each refusal takes.
func BenchmarkGarbageFinish(b *testing.B) {
	cat := catalogAt(b, filepath.Join(b.TempDir(), "catalog.db"))
	defer cat.Close()
	m, err := Open(cat, Options{DeviceID: testDeviceID})
	if err != nil {
		b.Fatal(err)
	}
	before := txID(b, cat)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		from := stranger(i)
		i++
		if _, _, err := m.Finish(FinishRequest{Nonce: random(nonceSize), Name: "mallory", Proof: random(32), From: from}); !errors.Is(err, ErrBadNonce) {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(txID(b, cat)-before), "commits")
}
