package device

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/camd-project/camd/device/connlimit"
	"github.com/camd-project/camd/internal/testenv"
)

// The HTTPS server's time limits, as newHTTPServer sets them from the
// defaults, over TLS with HTTP/1.1 and HTTP/2, on in-memory connections
// in a synctest bubble: the default numbers are tested, in fake time.

// memListener is a net.Listener of in-memory connections (memPipe).
type memListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newMemListener() *memListener {
	return &memListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *memListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *memListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *memListener) Addr() net.Addr { return memAddr{} }

func (l *memListener) dial(context.Context, string, string) (net.Conn, error) {
	client, server := memPipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// memPipe is a connection in memory whose writes never wait for the
// reader: with net.Pipe's, two TLS ends closing at once wait for each
// other. Every wait is on a channel or a timer, so a synctest bubble
// sees it as durable and its clock moves on.
func memPipe() (net.Conn, net.Conn) {
	a, b := newMemBuf(), newMemBuf()
	return &memConn{in: a, out: b}, &memConn{in: b, out: a}
}

type memAddr struct{}

func (memAddr) Network() string { return "mem" }
func (memAddr) String() string  { return "127.0.0.1:8443" }

// memBuf is one direction of a memPipe.
type memBuf struct {
	mu       sync.Mutex
	data     []byte
	eof      bool      // the writer closed
	closed   bool      // the reader closed
	deadline time.Time // for reads
	wake     chan struct{}
}

func newMemBuf() *memBuf { return &memBuf{wake: make(chan struct{}, 1)} }

func (b *memBuf) signal() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

type memConn struct{ in, out *memBuf }

func (c *memConn) Read(p []byte) (int, error) {
	b := c.in
	for {
		b.mu.Lock()
		switch {
		case b.closed:
			b.mu.Unlock()
			return 0, net.ErrClosed
		case len(b.data) > 0:
			n := copy(p, b.data)
			b.data = b.data[n:]
			b.mu.Unlock()
			return n, nil
		case b.eof:
			b.mu.Unlock()
			return 0, io.EOF
		case !b.deadline.IsZero() && !time.Now().Before(b.deadline):
			b.mu.Unlock()
			return 0, os.ErrDeadlineExceeded
		}
		var expired <-chan time.Time
		if !b.deadline.IsZero() {
			timer := time.NewTimer(time.Until(b.deadline))
			defer timer.Stop()
			expired = timer.C
		}
		b.mu.Unlock()
		select {
		case <-b.wake:
		case <-expired:
		}
	}
}

func (c *memConn) Write(p []byte) (int, error) {
	b := c.out
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || b.eof {
		return 0, net.ErrClosed
	}
	b.data = append(b.data, p...)
	b.signal()
	return len(p), nil
}

func (c *memConn) Close() error {
	for _, b := range []*memBuf{c.in, c.out} {
		b.mu.Lock()
		if b == c.in {
			b.closed = true
		} else {
			b.eof = true
		}
		b.signal()
		b.mu.Unlock()
	}
	return nil
}

func (c *memConn) SetReadDeadline(t time.Time) error {
	c.in.mu.Lock()
	c.in.deadline = t
	c.in.signal()
	c.in.mu.Unlock()
	return nil
}

func (c *memConn) SetDeadline(t time.Time) error    { return c.SetReadDeadline(t) }
func (c *memConn) SetWriteDeadline(time.Time) error { return nil } // writes never wait
func (c *memConn) LocalAddr() net.Addr              { return memAddr{} }
func (c *memConn) RemoteAddr() net.Addr             { return memAddr{} }

// fakeTimeServer serves h with the default limits over TLS on a pipe
// listener, and returns a client speaking proto ("HTTP/1.1" or
// "HTTP/2.0") and a function that stops both. Call it in a bubble.
func fakeTimeServer(t *testing.T, cert tls.Certificate, proto string, h http.Handler) (*memListener, *http.Client, func()) {
	t.Helper()
	l := newMemListener()
	srv := newHTTPServer(Defaults().HTTP, h, &tls.Config{Certificates: []tls.Certificate{cert}}, slog.New(slog.DiscardHandler))
	// Each connection's requests carry its number (connOf): the
	// transport may open a second connection.
	var conns atomic.Int32
	srv.ConnContext = func(ctx context.Context, _ net.Conn) context.Context {
		return context.WithValue(ctx, connKey{}, conns.Add(1))
	}
	done := make(chan struct{})
	go func() { srv.ServeTLS(l, "", ""); close(done) }()
	tr := &http.Transport{
		DialContext:     l.dial,
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
		Protocols:       new(http.Protocols),
		HTTP2:           &http.HTTP2Config{StrictMaxConcurrentRequests: true},
	}
	tr.Protocols.SetHTTP1(proto == "HTTP/1.1")
	tr.Protocols.SetHTTP2(proto == "HTTP/2.0")
	return l, &http.Client{Transport: tr}, func() {
		srv.Close()
		<-done
		tr.CloseIdleConnections()
	}
}

// connKey keys a request's connection number (fakeTimeServer).
type connKey struct{}

// connOf is the number of the connection r came on.
func connOf(r *http.Request) int32 { n, _ := r.Context().Value(connKey{}).(int32); return n }

func testCert(t *testing.T) tls.Certificate {
	t.Helper()
	id, err := LoadIdentity(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return id.TLS
}

// trickle is a request body that arrives one byte every gap, n bytes in
// all, until the request is cut off. stop ends it and waits.
func trickle(n int, gap time.Duration) (body io.Reader, stop func()) {
	r, w := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range n {
			if _, err := w.Write([]byte(" ")); err != nil {
				return
			}
			time.Sleep(gap)
		}
		w.Close()
	}()
	return r, func() { r.Close(); <-done }
}

var protos = []string{"HTTP/1.1", "HTTP/2.0"}

// A request body trickled one byte every 5 s is cut off within 30 s
// (at the default read timeout, 20 s), over HTTP/1.1 and HTTP/2.
func TestTrickledBodyIsCutOff(t *testing.T) {
	cert := testCert(t)
	for _, proto := range protos {
		t.Run(proto, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				readErr := make(chan error, 1)
				_, client, stop := fakeTimeServer(t, cert, proto, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					_, err := io.ReadAll(r.Body)
					readErr <- err
					http.Error(w, "too slow", http.StatusRequestTimeout)
				}))
				defer stop()
				body, stopBody := trickle(1000, 5*time.Second) // 5000 s if nothing cut it
				defer stopBody()
				req, _ := http.NewRequest("POST", "https://camd/api/v1/pair/finish", body)
				req.ContentLength = 1000
				start := time.Now()
				// The answer (408), or over HTTP/1.1 sometimes the closed
				// connection, whichever the client sees first.
				resp, err := client.Do(req)
				if err == nil {
					resp.Body.Close()
				}
				took := time.Since(start)
				if err := <-readErr; !errors.Is(err, os.ErrDeadlineExceeded) || took > 30*time.Second {
					t.Errorf("the body read %v after %v, want the deadline within 30 s", err, took)
				}
				if err == nil && (resp.Proto != proto || resp.StatusCode != http.StatusRequestTimeout) {
					t.Errorf("answer %s %d", resp.Proto, resp.StatusCode)
				}
				t.Logf("%s: cut off after %v", proto, took)
			})
		})
	}
}

// A handler that answers without reading the body (a refused credential)
// leaves the server draining it after the answer; the read timeout bounds
// that too. Before, a body trickled after a 401 held the connection for
// as long as the client liked.
func TestUnreadBodyIsCutOff(t *testing.T) {
	cert := testCert(t)
	synctest.Test(t, func(t *testing.T) {
		l, _, stop := fakeTimeServer(t, cert, "HTTP/1.1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "no credential", http.StatusUnauthorized)
		}))
		defer stop()
		raw, err := l.dial(t.Context(), "", "")
		if err != nil {
			t.Fatal(err)
		}
		c := tls.Client(raw, &tls.Config{InsecureSkipVerify: true})
		defer c.Close()
		start := time.Now()
		io.WriteString(c, "POST /api/v1/settings HTTP/1.1\r\nHost: camd\r\nContent-Length: 1000\r\n\r\n ")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("answer %v, %v", resp, err)
		}
		for range 999 {
			if _, err := c.Write([]byte(" ")); err != nil {
				break
			}
			time.Sleep(5 * time.Second)
		}
		if took := time.Since(start); took > 30*time.Second {
			t.Errorf("the connection was closed after %v, want within 30 s", took)
		}
	})
}

// Long answers are not cut by the read timeout: a five-minute stream (an
// export, server-sent events), asked with a GET or with a POST body, over
// HTTP/1.1 and HTTP/2.
func TestLongAnswersOutliveTheReadTimeout(t *testing.T) {
	cert := testCert(t)
	const chunks, gap = 30, 10 * time.Second
	for _, proto := range protos {
		for _, method := range []string{"GET", "POST"} {
			t.Run(proto+" "+method, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					ctxErr := make(chan error, 1)
					_, client, stop := fakeTimeServer(t, cert, proto, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						if _, err := io.ReadAll(r.Body); err != nil {
							t.Errorf("body: %v", err)
						}
						w.Header().Set("Content-Type", "text/event-stream")
						for i := range chunks {
							if err := r.Context().Err(); err != nil {
								ctxErr <- err
								return
							}
							fmt.Fprintf(w, "data: %d\n\n", i)
							w.(http.Flusher).Flush()
							time.Sleep(gap)
						}
						ctxErr <- nil
					}))
					defer stop()
					var body io.Reader
					if method == "POST" {
						body = strings.NewReader(`{"from": "-1h"}`)
					}
					req, _ := http.NewRequest(method, "https://camd/api/v1/events/stream", body)
					resp, err := client.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					got, err := io.ReadAll(resp.Body)
					resp.Body.Close()
					if n := strings.Count(string(got), "data: "); n != chunks || err != nil || resp.Proto != proto {
						t.Errorf("%s: %d of %d events, %v", resp.Proto, n, chunks, err)
					}
					if err := <-ctxErr; err != nil {
						t.Errorf("the answer's context ended: %v", err)
					}
				})
			})
		}
	}
}

// A connection that sends nothing, or half a TLS handshake, is dropped
// at the handshake timeout (5 s).
func TestStalledHandshakeIsDropped(t *testing.T) {
	cert := testCert(t)
	for name, send := range map[string]string{"nothing": "", "half a ClientHello": "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				l, _, stop := fakeTimeServer(t, cert, "HTTP/1.1", http.NotFoundHandler())
				defer stop()
				c, err := l.dial(t.Context(), "", "")
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				start := time.Now()
				go io.WriteString(c, send)
				_, err = io.Copy(io.Discard, c)
				if took := time.Since(start); took != Defaults().HTTP.HandshakeTimeout {
					t.Errorf("dropped after %v (%v), want 5 s", took, err)
				}
			})
		})
	}
}

// One HTTP/2 connection runs at most maxStreams handlers at once, so the
// connection caps bound the handlers.
func TestHTTP2StreamsPerConnection(t *testing.T) {
	cert := testCert(t)
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		now := map[int32]int32{} // handlers running, per connection
		var most int32
		_, client, stop := fakeTimeServer(t, cert, "HTTP/2.0", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c := connOf(r)
			mu.Lock()
			now[c]++
			most = max(most, now[c])
			mu.Unlock()
			time.Sleep(time.Second)
			mu.Lock()
			now[c]--
			mu.Unlock()
		}))
		defer stop()
		var wg sync.WaitGroup
		for range 3 * maxStreams {
			wg.Go(func() {
				if resp, err := client.Get("https://camd/health"); err == nil {
					resp.Body.Close()
				}
			})
		}
		wg.Wait()
		// (net/http's default is 250.)
		if m := most; m > maxStreams || m < 2 {
			t.Errorf("%d handlers at once on one connection, want at most %d", m, maxStreams)
		}
	})
}

// The floods below run against a real daemon on loopback: the attacker
// from 127.0.0.2 (all of 127/8 is loopback on Linux), the owner from
// 127.0.0.1.

// enoughFiles raises the soft limit on open files to n if it is lower,
// or skips the test when the hard limit does not allow n. (Go already
// raises the soft limit to the hard one at start.)
func enoughFiles(t testing.TB, n uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Skipf("no RLIMIT_NOFILE: %v", err)
	}
	if lim.Cur >= n {
		return
	}
	lim.Cur = min(n, lim.Max)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur < n {
		t.Skipf("needs %d open files; the limit is %d (%v)", n, lim.Cur, err)
	}
}

// dialFrom connects to d from the loopback address ip.
func dialFrom(ip string, d *Daemon) (net.Conn, error) {
	dialer := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 10 * time.Second}
	return dialer.Dial("tcp", d.Addr().String())
}

// ownerChecks gets /health and /api/v1/me on a new connection each, until
// stop is closed, and returns the number of connections it made and the
// slowest answer. Run it on the test's goroutine.
func ownerChecks(t *testing.T, d *Daemon, token string, stop <-chan struct{}) (conns int, slowest time.Duration) {
	t.Helper()
	var dialer net.Dialer
	for {
		for _, path := range []string{"/health", "/api/v1/me"} {
			client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
				TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true,
				DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
					conns++
					return dialer.DialContext(ctx, network, addr)
				},
			}}
			req, _ := http.NewRequest("GET", "https://"+d.Addr().String()+path, nil)
			req.Header.Set("Authorization", "Bearer "+token)
			start := time.Now()
			resp, err := client.Do(req)
			if err != nil && time.Since(start) >= d.cfg.HTTP.ReadTimeout {
				// The machine was too slow to finish even the owner's
				// handshake and request within the read timeout: the
				// timeout did its job, on a client it starved. Ask again.
				t.Logf("owner: %s during the flood took %s: %v; again", path, time.Since(start).Round(time.Millisecond), err)
				continue
			}
			if err != nil {
				t.Fatalf("owner: %s during the flood: %v", path, err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			slowest = max(slowest, time.Since(start))
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("owner: %s during the flood: %d", path, resp.StatusCode)
			}
		}
		select {
		case <-stop:
			return conns, slowest
		case <-time.After(10 * time.Millisecond): // a pace, not a wait
		}
	}
}

// highest samples the daemon's open connections until stop is closed and
// returns the most it saw.
func highest(d *Daemon, stop <-chan struct{}) <-chan int {
	out := make(chan int, 1)
	go func() {
		most := 0
		for {
			most = max(most, d.conns.Stats().Open)
			select {
			case <-stop:
				out <- most
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	return out
}

// 5,000 connections from one address that send nothing: 32 are let in
// (and dropped at the handshake timeout), the rest are closed at once and
// counted; the owner gets /health and an authorized route on new
// connections throughout, within a bounded time.
func TestSilentConnectionFlood(t *testing.T) {
	const attempts, attackers = 5000, 50
	enoughFiles(t, attempts+1000)
	d := running(t)
	token := owner(t, d)
	before := d.conns.Stats()
	// The first attempt, alone: can this host dial from 127.0.0.2?
	if c, err := dialFrom("127.0.0.2", d); err != nil {
		t.Skipf("cannot dial from 127.0.0.2: %v", err)
	} else {
		c.Close()
	}

	stop := make(chan struct{})
	most := highest(d, stop)
	var failed atomic.Int64
	var dialled atomic.Int64
	dialled.Store(1)
	var held sync.Map
	var wg sync.WaitGroup
	start := time.Now()
	for range attackers {
		wg.Go(func() {
			for dialled.Add(1) <= attempts {
				c, err := dialFrom("127.0.0.2", d)
				if err != nil {
					// Mostly a reset that arrived before connect
					// returned: a refusal.
					failed.Add(1)
					continue
				}
				held.Store(c, true) // silent, open until the end
			}
		})
	}
	attackDone := make(chan struct{})
	go func() { wg.Wait(); close(attackDone) }()
	n, slowest := ownerChecks(t, d, token, attackDone)
	took := time.Since(start)
	// The last attempts may still wait in the kernel's accept queue.
	var after connlimit.Stats
	var refused, accepted uint64
	testenv.Eventually(t, "every attempt accepted or refused", func() bool {
		after = d.conns.Stats()
		refused = after.RefusedPerAddress - before.RefusedPerAddress
		accepted = after.Accepted - before.Accepted - uint64(n) // less the owner's
		return refused+accepted >= attempts
	})
	close(stop)
	mostOpen := <-most
	held.Range(func(c, _ any) bool { c.(net.Conn).Close(); return true })
	t.Logf("%d attempts in %v: %d let in, %d refused (%d of them already at connect); most open at once %d; owner: %d connections, slowest answer %v",
		attempts, took, accepted, refused, failed.Load(), mostOpen, n, slowest)
	// The owner's connections overlap a little: the server may still be
	// closing one when the next arrives.
	if mostOpen > 32+n {
		t.Errorf("%d connections open at once, want at most 32 from 127.0.0.2 and the owner's %d", mostOpen, n)
	}
	if after.RefusedMax != before.RefusedMax {
		t.Errorf("the total cap refused %d: one address must not reach it", after.RefusedMax-before.RefusedMax)
	}
	// The first attempt closed at once; the 32 let in after it are
	// dropped at the 5 s handshake timeout and their places taken again.
	if limit := 1 + uint64(32*(1+took/(5*time.Second))); accepted > limit {
		t.Errorf("%d connections from 127.0.0.2 let in over %v, want at most %d", accepted, took, limit)
	}
	if refused+accepted != attempts || uint64(failed.Load()) > refused {
		t.Errorf("%d refused + %d let in (%d failed dials): want %d attempts", refused, accepted, failed.Load(), attempts)
	}
	if slowest > 5*time.Second {
		t.Errorf("the owner's slowest answer took %v", slowest)
	}
	// The stats route reports the counts.
	code, b := call(t, d, "GET", "/api/v1/stats", token, nil)
	if code != http.StatusOK || !strings.Contains(string(b), `"refused_per_address": `+fmt.Sprint(after.RefusedPerAddress)) {
		t.Errorf("stats: %d %s", code, b)
	}
}

// slowBody sends a pair/finish request from ip whose 10,000-byte body
// comes one byte every gap, and returns how long after its headers the
// server closed the connection; refused is set when the connection was
// closed before TLS.
func slowBody(d *Daemon, ip string, gap time.Duration) (cut time.Duration, refused bool, err error) {
	raw, err := dialFrom(ip, d)
	if err != nil {
		return 0, true, nil // reset before connect returned
	}
	c := tls.Client(raw, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	defer c.Close()
	if err := c.Handshake(); err != nil {
		return 0, true, nil
	}
	start := time.Now()
	if _, err := io.WriteString(c, "POST /api/v1/pair/finish HTTP/1.1\r\nHost: camd\r\nContent-Type: application/json\r\nContent-Length: 10000\r\n\r\n{"); err != nil {
		return 0, false, err
	}
	closed := make(chan struct{})
	go func() {
		for {
			select {
			case <-closed:
				return
			case <-time.After(gap):
			}
			if _, err := c.Write([]byte(" ")); err != nil {
				return
			}
		}
	}()
	io.Copy(io.Discard, c) // the answer, then the close
	close(closed)
	return time.Since(start), false, nil
}

// 64 requests from one address whose bodies trickle a byte every 500 ms:
// 32 connections are let in and each request is cut off at the read
// timeout (2 s here), the others are closed before TLS; the owner is
// served throughout.
func TestSlowBodyFlood(t *testing.T) {
	const attackers = 64
	d := running(t, func(c *Config) { c.HTTP.ReadTimeout = 2 * time.Second })
	token := owner(t, d)
	if c, err := dialFrom("127.0.0.2", d); err != nil {
		t.Skipf("cannot dial from 127.0.0.2: %v", err)
	} else {
		c.Close()
	}
	type result struct {
		cut     time.Duration
		refused bool
		err     error
	}
	results := make(chan result, attackers)
	for range attackers {
		go func() {
			cut, refused, err := slowBody(d, "127.0.0.2", 500*time.Millisecond)
			results <- result{cut, refused, err}
		}()
	}
	attackDone := make(chan struct{})
	var got []result
	go func() {
		for range attackers {
			got = append(got, <-results)
		}
		close(attackDone)
	}()
	conns, slowest := ownerChecks(t, d, token, attackDone)
	let, longest := 0, time.Duration(0)
	for _, r := range got {
		if r.err != nil {
			t.Errorf("attacker: %v", r.err)
		}
		if !r.refused {
			let++
			longest = max(longest, r.cut)
		}
	}
	t.Logf("%d slow bodies let in of %d, cut after at most %v; owner: %d connections, slowest answer %v", let, attackers, longest, conns, slowest)
	if let == 0 || let > 32 {
		t.Errorf("%d slow requests let in from 127.0.0.2, want 1 to 32", let)
	}
	// Trickled to the end, a body would take 10,000 × 500 ms.
	if longest < 2*time.Second || longest > 20*time.Second {
		t.Errorf("slow bodies cut after at most %v, want 2 s (the read timeout)", longest)
	}
	if slowest > 5*time.Second {
		t.Errorf("the owner's slowest answer took %v", slowest)
	}
	if s := d.conns.Stats(); s.RefusedPerAddress < uint64(attackers-let) {
		t.Errorf("stats %+v: want %d refused", s, attackers-let)
	}
}
