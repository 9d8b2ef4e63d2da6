package connlimit

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// fakeListener hands out the connections queued in it, then ErrClosed.
type fakeListener struct {
	conns chan net.Conn
}

func newFakeListener() *fakeListener { return &fakeListener{conns: make(chan net.Conn, 10_000)} }

func (f *fakeListener) Accept() (net.Conn, error) {
	c, ok := <-f.conns
	if !ok {
		return nil, net.ErrClosed
	}
	return c, nil
}
func (f *fakeListener) Close() error   { return nil }
func (f *fakeListener) Addr() net.Addr { return &net.TCPAddr{} }

// fakeConn is a connection from an address that records its closing.
type fakeConn struct {
	net.Conn // nil: only the methods below are called
	remote   *net.TCPAddr
	closed   atomic.Int32
}

func (c *fakeConn) RemoteAddr() net.Addr { return c.remote }
func (c *fakeConn) Close() error         { c.closed.Add(1); return nil }

// from queues a connection from addr and returns it.
func (f *fakeListener) from(addr string) *fakeConn {
	c := &fakeConn{remote: net.TCPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(addr), 50000))}
	f.conns <- c
	return c
}

// acceptAll accepts until the queue is empty.
func acceptAll(t *testing.T, f *fakeListener, l *Listener) []net.Conn {
	t.Helper()
	close(f.conns)
	var got []net.Conn
	for {
		c, err := l.Accept()
		if errors.Is(err, net.ErrClosed) {
			return got
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, c)
	}
}

func TestPerAddressCap(t *testing.T) {
	f := newFakeListener()
	l := NewListener(f, Options{Max: 100, MaxPerAddress: 3})
	var fromA []*fakeConn
	for range 5 {
		fromA = append(fromA, f.from("192.0.2.1"))
	}
	f.from("192.0.2.2")
	f.from("::ffff:192.0.2.1") // the same client as 192.0.2.1
	accepted := acceptAll(t, f, l)
	if len(accepted) != 4 {
		t.Fatalf("accepted %d, want 3 from 192.0.2.1 and 1 from 192.0.2.2", len(accepted))
	}
	for i, c := range fromA {
		if want := int32(min(i/3, 1)); c.closed.Load() != want {
			t.Errorf("connection %d from 192.0.2.1 closed %d times, want %d", i, c.closed.Load(), want)
		}
	}
	if s := l.Stats(); s != (Stats{Open: 4, Accepted: 4, RefusedPerAddress: 3}) {
		t.Errorf("stats %+v", s)
	}

	// A closed connection frees its place, once however often it is closed.
	accepted[0].Close()
	accepted[0].Close()
	f = newFakeListener()
	l.Listener = f
	f.from("192.0.2.1")
	f.from("192.0.2.1")
	if got := acceptAll(t, f, l); len(got) != 1 {
		t.Errorf("after one closed: accepted %d from 192.0.2.1, want 1", len(got))
	}
	if s := l.Stats(); s != (Stats{Open: 4, Accepted: 5, RefusedPerAddress: 4}) {
		t.Errorf("stats %+v", s)
	}
}

func TestTotalCap(t *testing.T) {
	f := newFakeListener()
	l := NewListener(f, Options{Max: 4})
	var conns []*fakeConn
	for i := range 6 {
		conns = append(conns, f.from(netip.AddrFrom4([4]byte{198, 51, 100, byte(i + 1)}).String()))
	}
	// IPv6 addresses count whole: two hosts of one /64 are two clients.
	f.from("2001:db8::1")
	f.from("2001:db8::2")
	accepted := acceptAll(t, f, l)
	if len(accepted) != 4 || conns[3].closed.Load() != 0 || conns[4].closed.Load() != 1 {
		t.Fatalf("accepted %d, want the first 4", len(accepted))
	}
	if s := l.Stats(); s != (Stats{Open: 4, Accepted: 4, RefusedMax: 4}) {
		t.Errorf("stats %+v", s)
	}
	if d := NewListener(f, Options{}).o; d.Max != 256 || d.MaxPerAddress != 32 || d.LogEvery != 10*time.Second {
		t.Errorf("defaults %+v", d)
	}
}

// records is a slog.Handler that hands each record to the channel.
type records chan slog.Record

func (r records) Enabled(context.Context, slog.Level) bool        { return true }
func (r records) Handle(_ context.Context, rec slog.Record) error { r <- rec; return nil }
func (r records) WithAttrs([]slog.Attr) slog.Handler              { return r }
func (r records) WithGroup(string) slog.Handler                   { return r }

// received drains the records logged so far.
func (r records) received() []slog.Record {
	var out []slog.Record
	for {
		select {
		case rec := <-r:
			out = append(out, rec)
		default:
			return out
		}
	}
}

func attr(rec slog.Record, key string) slog.Value {
	var v slog.Value
	rec.Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			v = a.Value
		}
		return true
	})
	return v
}

// A flood of refusals makes one log line at once, then at most one an
// interval with the number refused since; Close writes the rest.
func TestRefusalsAreLoggedAtMostOnceAnInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		logged := make(records, 100)
		f := newFakeListener()
		l := NewListener(f, Options{Max: 10, MaxPerAddress: 1, Logger: slog.New(logged)})
		start := time.Now()
		accepted := make(chan net.Conn, 1)
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					close(accepted)
					return
				}
				accepted <- c
			}
		}()
		// 1,000 connections from one address over 25 s: the first is let
		// through, 999 refused.
		for range 1000 {
			f.from("192.0.2.9")
			time.Sleep(25 * time.Millisecond)
		}
		<-accepted
		synctest.Wait()
		recs := logged.received()
		if len(recs) != 3 {
			t.Errorf("%d lines in 25 s, want 3 (at 0, 10 and 20 s)", len(recs))
		}
		close(f.conns)
		<-accepted
		l.Close()
		recs = append(recs, logged.received()...)
		var refused int64
		for i, r := range recs {
			if r.Message != "connlimit: connections refused" || attr(r, "last_address").String() != "192.0.2.9" || r.Level != slog.LevelWarn {
				t.Errorf("line %d: %v", i, r)
			}
			refused += int64(attr(r, "over_per_address").Uint64())
			if want := start.Add(time.Duration(i) * 10 * time.Second); i < 3 && r.Time.Sub(want).Abs() > 100*time.Millisecond {
				t.Errorf("line %d at %v, want %v", i, r.Time.Sub(start), want.Sub(start))
			}
		}
		if len(recs) != 4 || refused != 999 || attr(recs[0], "over_per_address").Uint64() != 1 {
			t.Errorf("%d lines counting %d refusals, want 4 lines counting 999, the first for 1", len(recs), refused)
		}
	})
}

// Over real TCP a refused connection is reset before any byte is
// exchanged, while the client's other addresses are unaffected.
func TestRefusedOverTCPBeforeAnyByte(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := NewListener(inner, Options{MaxPerAddress: 1})
	defer l.Close()
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dial := func(from string) net.Conn {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
		c, err := d.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Skipf("cannot dial from %s (all of 127/8 is loopback on Linux): %v", from, err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	dial("127.0.0.2")
	first := <-accepted
	refused := dial("127.0.0.2")
	refused.SetReadDeadline(time.Now().Add(time.Minute))
	if n, err := refused.Read(make([]byte, 1)); n != 0 || err == nil || errors.Is(err, net.ErrClosed) || isTimeout(err) {
		t.Errorf("second connection from 127.0.0.2: read %d, %v; want a reset", n, err)
	}
	dial("127.0.0.3")
	<-accepted
	first.Close()
	dial("127.0.0.2")
	<-accepted
	if s := l.Stats(); s != (Stats{Open: 2, Accepted: 3, RefusedPerAddress: 1}) {
		t.Errorf("stats %+v", s)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
