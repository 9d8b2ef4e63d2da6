package connlimit

import (
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Defaults of Options.
const (
	DefaultMax           = 256
	DefaultMaxPerAddress = 32
	DefaultLogEvery      = 10 * time.Second
)

// Options sets a Listener's limits. The zero value means the defaults.
type Options struct {
	// Max is the most connections open at once (DefaultMax).
	Max int
	// MaxPerAddress is the most connections one client IP address may
	// have open at once (DefaultMaxPerAddress). IPv6 addresses count
	// whole: every host of a LAN shares its /64.
	MaxPerAddress int
	// Logger, when set, is told about refused connections: at once for
	// the first, then at most once every LogEvery with the number refused
	// since (DefaultLogEvery).
	Logger   *slog.Logger
	LogEvery time.Duration
}

// Stats counts a Listener's connections.
type Stats struct {
	// Open is the number of connections accepted and not yet closed.
	Open int `json:"open"`
	// Accepted counts the connections let through since the start.
	Accepted uint64 `json:"accepted"`
	// RefusedMax counts the connections closed because Max were open.
	RefusedMax uint64 `json:"refused_max"`
	// RefusedPerAddress counts the connections closed because their
	// address had MaxPerAddress open.
	RefusedPerAddress uint64 `json:"refused_per_address"`
}

// Listener is a net.Listener whose Accept closes the connections over its
// caps and returns the others. A returned connection frees its place when
// it is closed.
type Listener struct {
	net.Listener
	o Options

	mu      sync.Mutex
	stats   Stats
	perAddr map[netip.Addr]int
	log     refusalLog
}

// refusalLog holds the refusals not logged yet.
type refusalLog struct {
	last     time.Time // when the last line was written
	max, per uint64    // refusals since then
	addr     netip.Addr
	timer    *time.Timer // writes the pending line when the interval ends
	closed   bool
}

// NewListener wraps l with the caps of o.
func NewListener(l net.Listener, o Options) *Listener {
	if o.Max <= 0 {
		o.Max = DefaultMax
	}
	if o.MaxPerAddress <= 0 {
		o.MaxPerAddress = DefaultMaxPerAddress
	}
	if o.LogEvery <= 0 {
		o.LogEvery = DefaultLogEvery
	}
	return &Listener{Listener: l, o: o, perAddr: map[netip.Addr]int{}}
}

// Accept returns the next connection within the caps. Connections over a
// cap are closed (with a reset, so no state lingers) and counted; Accept
// returns only the underlying listener's errors.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		addr := addrOf(c.RemoteAddr())
		if l.admit(addr) {
			return &conn{Conn: c, l: l, addr: addr}, nil
		}
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		c.Close()
	}
}

// admit takes a place for addr, or counts a refusal.
func (l *Listener) admit(addr netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.stats.Open >= l.o.Max:
		l.stats.RefusedMax++
		l.log.max++
	case l.perAddr[addr] >= l.o.MaxPerAddress:
		l.stats.RefusedPerAddress++
		l.log.per++
	default:
		l.stats.Open++
		l.stats.Accepted++
		l.perAddr[addr]++
		return true
	}
	l.log.addr = addr
	l.logRefusalsLocked(false)
	return false
}

func (l *Listener) release(addr netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stats.Open--
	if l.perAddr[addr]--; l.perAddr[addr] <= 0 {
		delete(l.perAddr, addr)
	}
}

// logRefusalsLocked writes the pending refusals if the interval since the
// last line has passed, and otherwise makes sure a timer will.
// With force it writes them at once (on Close).
func (l *Listener) logRefusalsLocked(force bool) {
	r := &l.log
	if l.o.Logger == nil || r.closed || r.max+r.per == 0 {
		return
	}
	now := time.Now()
	if wait := r.last.Add(l.o.LogEvery).Sub(now); wait > 0 && !force {
		if r.timer == nil {
			r.timer = time.AfterFunc(wait, l.flushRefusals)
		}
		return
	}
	// Logged under the lock: at most once an interval, and the lines
	// stay in order.
	l.o.Logger.Warn("connlimit: connections refused",
		"over_max", r.max, "over_per_address", r.per, "last_address", r.addr.String(),
		"max", l.o.Max, "max_per_address", l.o.MaxPerAddress, "open", l.stats.Open)
	r.last, r.max, r.per = now, 0, 0
}

func (l *Listener) flushRefusals() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.log.timer = nil
	l.logRefusalsLocked(false)
}

// Stats returns the counts so far.
func (l *Listener) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stats
}

// Close closes the underlying listener and writes the refusals not
// logged yet. The connections already accepted stay open.
func (l *Listener) Close() error {
	l.mu.Lock()
	l.logRefusalsLocked(true)
	l.log.closed = true
	if l.log.timer != nil {
		l.log.timer.Stop()
		l.log.timer = nil
	}
	l.mu.Unlock()
	return l.Listener.Close()
}

// addrOf is the client's IP address; every connection of a listener
// that is not TCP shares the zero address.
func addrOf(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap().WithZone("")
	}
	return netip.Addr{}
}

// conn frees its place in the listener once, when first closed.
type conn struct {
	net.Conn
	l    *Listener
	addr netip.Addr
	once sync.Once
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.addr) })
	return err
}
