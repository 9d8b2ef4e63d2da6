package pairing

import (
	"net/netip"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// BenchmarkAuthenticateWhileFailing checks a credential, as every request
// does, while another goroutine writes failed pairing attempts to the
// catalog (each one an fsynced commit) as fast as it can, as a guessing
// attacker would. The checks arrive about every 100 µs, independently of
// the commits, as requests do; the benchmark reports their latency (p50,
// p99, max) and how many failures were written a second. Its ns/op, the
// time between checks, is not reported; B/op and allocs/op count the
// writer's allocations too.
func BenchmarkAuthenticateWhileFailing(b *testing.B) {
	cat := catalogAt(b, filepath.Join(b.TempDir(), "catalog.db"))
	defer cat.Close()
	m, err := Open(cat, Options{DeviceID: testDeviceID})
	if err != nil {
		b.Fatal(err)
	}
	secret := m.SetupPayload(netip.AddrPort{}).Secret
	nonce, err := m.Start("")
	if err != nil {
		b.Fatal(err)
	}
	_, token, err := m.Finish(FinishRequest{Nonce: nonce, Name: "owner", Proof: Proof(secret[:], testDeviceID, nonce, "owner")})
	if err != nil {
		b.Fatal(err)
	}

	failures := 0
	stop := background(1, func() bool {
		m.Finish(FinishRequest{Nonce: []byte("stale"), Name: "mallory", Proof: []byte("wrong")})
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
