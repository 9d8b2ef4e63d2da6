package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkGarbagePairFinish is a stranger's flood of the public pairing
// route: 10,000 POST /api/v1/pair/finish with random nonces and proofs,
// 8 at a time over kept-alive connections, against a camd process that
// encodes nothing (a passthrough FIFO no one writes). It reports camd's
// CPU time and what it made the kernel write to storage meanwhile
// (write_bytes of /proc/PID/io): none of it may count against pairing's
// limits or reach the catalog, so the goal is 0 bytes. Afterwards the
// owner still pairs a second user by invitation.
func BenchmarkGarbagePairFinish(b *testing.B) {
	const requests, workers = 10_000, 8
	fifo := filepath.Join(b.TempDir(), "no-writer.fifo")
	d := startDaemon(b, "--config", writeConfig(b, "source: passthrough\npassthrough: {fifo: "+fifo+"}\n"))
	pid := d.cmd.Process.Pid
	client := insecureClient()
	client.Transport.(*http.Transport).MaxIdleConnsPerHost = workers
	url := "https://" + d.addr + "/api/v1/pair/finish"
	body := func() []byte {
		nonce, proof := make([]byte, 32), make([]byte, 32)
		rand.Read(nonce)
		rand.Read(proof)
		return fmt.Appendf(nil, `{"nonce": %q, "name": "mallory", "proof": %q}`,
			base64.StdEncoding.EncodeToString(nonce), base64.StdEncoding.EncodeToString(proof))
	}
	for range b.N {
		wrote0 := writeBytes(b, pid)
		_, cpu0 := procStat(b, pid)
		start := time.Now()
		var next atomic.Int64
		var refused, other atomic.Int64
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for next.Add(1) <= requests {
					resp, err := client.Post(url, "application/json", bytes.NewReader(body()))
					if err != nil {
						other.Add(1)
						continue
					}
					io.Copy(io.Discard, resp.Body) // so the connection is kept
					resp.Body.Close()
					if resp.StatusCode == http.StatusUnauthorized {
						refused.Add(1)
					} else {
						other.Add(1)
					}
				}
			})
		}
		wg.Wait()
		took := time.Since(start)
		_, cpu1 := procStat(b, pid)
		wrote := writeBytes(b, pid) - wrote0
		if refused.Load() != requests {
			b.Fatalf("%d of %d garbage finishes refused with 401, %d otherwise", refused.Load(), requests, other.Load())
		}
		b.ReportMetric(float64(wrote), "bytes-written")
		b.ReportMetric(float64((cpu1 - cpu0).Milliseconds()), "camd-cpu-ms")
		b.ReportMetric(float64(took.Microseconds())/requests, "µs/request")
	}
	b.ReportMetric(0, "ns/op")
	// Pairing still works: the owner invites, a second user pairs.
	ctx := b.Context()
	out, err := camctl(b, ctx, "users", "invite", "--store", d.store)
	if err != nil {
		b.Fatal(err)
	}
	payload := ""
	for _, l := range strings.Split(out, "\n") {
		if l = strings.TrimSpace(l); strings.HasPrefix(l, "CAMD1:") {
			payload = l
		}
	}
	if _, err := camctl(b, ctx, "pair", "--store", filepath.Join(b.TempDir(), "tablet.json"), "--addr", d.addr, "--name", "tablet", payload); err != nil {
		b.Fatalf("pairing by invitation after the flood: %v", err)
	}
}
