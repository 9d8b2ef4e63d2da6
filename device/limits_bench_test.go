package device

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"
)

// slowHolder keeps one slow connection open from ip until stop is closed,
// opening it again whenever the server drops it: a silent one sends
// nothing (dropped at the handshake timeout), the others do TLS and
// trickle a request body a byte a second (cut at the read timeout). A
// refused connection is tried again a second later.
func slowHolder(d *Daemon, ip string, silent bool, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		raw, err := dialFrom(ip, d)
		if err != nil {
			pause(stop, time.Second)
			continue
		}
		done := make(chan struct{})
		go func() {
			select {
			case <-stop:
			case <-done:
			}
			raw.Close()
		}()
		if silent {
			opened := time.Now()
			io.Copy(io.Discard, raw) // until the server drops it
			close(done)
			if time.Since(opened) < time.Second { // refused
				pause(stop, time.Second)
			}
			continue
		}
		c := tls.Client(raw, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
		if c.Handshake() != nil {
			close(done)
			pause(stop, time.Second)
			continue
		}
		io.WriteString(c, "POST /api/v1/pair/finish HTTP/1.1\r\nHost: camd\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{")
		go func() {
			for {
				select {
				case <-done:
					return
				case <-time.After(time.Second):
				}
				if _, err := c.Write([]byte(" ")); err != nil {
					return
				}
			}
		}()
		io.Copy(io.Discard, c)
		close(done)
	}
}

func pause(stop <-chan struct{}, d time.Duration) {
	select {
	case <-stop:
	case <-time.After(d):
	}
}

// BenchmarkCredentialCheckUnderSlowConnections measures an authorized
// GET /api/v1/me (a viewer's credential, over a kept-alive connection)
// while 2,000 slow connections are held open from 100 other loopback
// addresses (20 each, under the per-address cap), half of them silent
// before TLS, half trickling a request body. With the cap raised to
// 2,100 the server holds all of them; with the default cap (256) it holds
// 256 and refuses the rest as they come back every second, while the
// owner's connection, opened before the flood, keeps working.
func BenchmarkCredentialCheckUnderSlowConnections(b *testing.B) {
	const slow, addrs = 2000, 100
	enoughFiles(b, 2*slow+1000)
	for _, maxConns := range []int{2100, 256} {
		b.Run(fmt.Sprintf("max_connections=%d", maxConns), func(b *testing.B) {
			d := running(b, func(c *Config) { c.HTTP.MaxConnections = maxConns })
			token := viewer(b, d, owner(b, d))
			client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
			defer client.CloseIdleConnections()
			get := func() error {
				req, _ := http.NewRequest("GET", "https://"+d.Addr().String()+"/api/v1/me", nil)
				req.Header.Set("Authorization", "Bearer "+token)
				resp, err := client.Do(req)
				if err != nil {
					return err
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					return fmt.Errorf("GET /api/v1/me: %d", resp.StatusCode)
				}
				return nil
			}
			if err := get(); err != nil { // the connection, before the flood
				b.Fatal(err)
			}
			if c, err := dialFrom("127.0.0.10", d); err != nil {
				b.Skipf("cannot dial from 127.0.0.10: %v", err)
			} else {
				c.Close()
			}

			stop := make(chan struct{})
			var wg sync.WaitGroup
			defer func() { close(stop); wg.Wait() }()
			for i := range slow {
				ip := fmt.Sprintf("127.0.0.%d", 10+i%addrs)
				wg.Go(func() { slowHolder(d, ip, i%2 == 0, stop) })
			}
			want := min(slow, maxConns-2)
			for deadline := time.Now().Add(time.Minute); d.conns.Stats().Open < want; {
				if time.Now().After(deadline) {
					b.Fatalf("only %d slow connections open after a minute", d.conns.Stats().Open)
				}
				time.Sleep(10 * time.Millisecond)
			}

			before, start := d.conns.Stats(), time.Now()
			var lat []time.Duration
			for b.Loop() {
				t0 := time.Now()
				if err := get(); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
			}
			after, took := d.conns.Stats(), time.Since(start)
			slices.Sort(lat)
			q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
			b.ReportMetric(q(0.50), "p50-ms")
			b.ReportMetric(q(0.99), "p99-ms")
			b.ReportMetric(float64(after.Open), "open")
			b.ReportMetric(float64(after.RefusedMax-before.RefusedMax)/took.Seconds(), "refused/s")
		})
	}
}
