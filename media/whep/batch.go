package whep

import (
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/pion/ice/v4"
	"golang.org/x/net/ipv4"
)

// A batch goes out once it holds batchMax packets or batchBytes bytes;
// at most maxBatches are filled or being sent at once (the fan-out's
// shards, NACK answers, recordings' viewers), beyond which a packet goes
// out on its own. Together they bound what batching holds to about
// 540 KB.
const (
	batchMax   = 128
	batchBytes = 64 << 10
	maxBatches = 8
)

// A run of packets to one address goes to the kernel as one message of
// at most gsoMaxSegments datagrams and gsoMaxBytes bytes (UDP GSO).
const (
	gsoMaxSegments = 64
	gsoMaxBytes    = 60000
)

// batchConn is the shared UDP socket under pion's ICE mux. A packet
// written while a sender is corked (cork, then uncork once its frame is
// written) waits in the pending batch, and the batch goes out in one
// sendmmsg when the sender uncorks or the batch is full: the frames of
// many viewers cost one system call instead of one per packet; so do the
// packets one NACK asks to have resent. Where the kernel segments UDP
// (UDP_SEGMENT, Linux 4.18 and later), consecutive packets of a batch to
// the same address and of the same size (the last may be shorter) go as
// one message that the kernel cuts into datagrams: the UDP stack runs
// once for a frame's packets to a viewer instead of once per packet. A
// route that cannot segment turns segmentation off for good. Writes
// outside a cork (ICE, DTLS, RTCP) go out at once. A batch that fails is
// lost as packets on the network are: pion never learns of the error.
//
// Batching needs an IPv4 socket (golang.org/x/net/ipv4 cannot address
// IPv4 peers from a dual-stack socket); on any other, cork does nothing.
type batchConn struct {
	*net.UDPConn
	pc  *ipv4.PacketConn // nil: no batching
	log *slog.Logger
	gso atomic.Bool // the kernel segments

	mu      sync.Mutex
	corks   int
	cur     *batch
	free    []*batch
	batches int // allocated
}

// batch is a set of packets copied for one sendmmsg.
type batch struct {
	data  []byte // the packets, back to back
	ends  [batchMax]int
	n     int
	to    [batchMax]netip.AddrPort
	addrs [batchMax]net.UDPAddr
	ips   [batchMax][4]byte
	iovs  [batchMax][1][]byte
	oob   []byte        // gsoSpace bytes for each message
	first [batchMax]int // the first packet of each message
	msgs  []ipv4.Message
}

var (
	_ net.PacketConn           = (*batchConn)(nil)
	_ ice.AddrPortReaderWriter = (*batchConn)(nil)
)

// newBatchConn wraps conn when it is a UDP socket; anything else (a test's
// fake) is returned as it is.
func newBatchConn(conn net.PacketConn, log *slog.Logger) net.PacketConn {
	u, ok := conn.(*net.UDPConn)
	if !ok {
		return conn
	}
	c := &batchConn{UDPConn: u, log: log}
	if la, ok := u.LocalAddr().(*net.UDPAddr); ok && la.IP.To4() != nil {
		c.pc = ipv4.NewPacketConn(u)
		c.gso.Store(gsoSupported(u))
	}
	return c
}

// cork holds the packets written from now until uncork for one sendmmsg.
// It is safe on a nil batchConn.
func (c *batchConn) cork() {
	if c == nil || c.pc == nil {
		return
	}
	c.mu.Lock()
	c.corks++
	c.mu.Unlock()
}

// uncork ends a cork and sends the packets waiting, those of senders
// still corked included: no packet waits longer than the frame it was
// written with.
func (c *batchConn) uncork() {
	if c == nil || c.pc == nil {
		return
	}
	c.mu.Lock()
	c.corks--
	b := c.takeLocked()
	c.mu.Unlock()
	c.send(b)
}

// takeLocked returns the pending batch, if it has packets, and starts a
// new one.
func (c *batchConn) takeLocked() *batch {
	b := c.cur
	if b == nil || b.n == 0 {
		return nil
	}
	c.cur = nil
	return b
}

func (c *batchConn) send(b *batch) {
	if b == nil {
		return
	}
	gso := c.gso.Load()
	b.messages(0, gso)
	for sent := 0; sent < len(b.msgs); {
		n, err := c.pc.WriteBatch(b.msgs[sent:], 0)
		if err != nil {
			if gso && len(b.msgs[sent].OOB) > 0 && gsoRefused(err) {
				// Sent again from the packet that failed, one
				// datagram a message.
				c.log.Info("whep: UDP segmentation refused; sending datagram by datagram", "err", err)
				c.gso.Store(false)
				gso = false
				b.messages(b.first[sent], false)
				sent = 0
				continue
			}
			c.log.Debug("whep: batched write failed", "err", err, "messages", len(b.msgs)-sent)
			break
		}
		sent += n
	}
	b.data, b.n = b.data[:0], 0
	c.mu.Lock()
	c.free = append(c.free, b)
	c.mu.Unlock()
}

// messages lays out b's packets from the from-th as sendmmsg messages:
// one per packet, or with gso one per run of packets to one address that
// the kernel can segment (all of one size, the last perhaps shorter).
// The first packet of a frame is longer than the rest (it carries the
// frame's header extensions): a run that would end at its second packet
// leaves it alone, so that the second starts the frame's long run.
func (b *batch) messages(from int, gso bool) {
	if gso && b.oob == nil {
		b.oob = make([]byte, batchMax*gsoSpace)
	}
	start := func(i int) int {
		if i == 0 {
			return 0
		}
		return b.ends[i-1]
	}
	size := func(i int) int { return b.ends[i] - start(i) }
	b.msgs = b.msgs[:0]
	for i := from; i < b.n; {
		j := i + 1 // the run is i..j-1
		if gso {
			seg := size(i)
			for j < b.n && j-i < gsoMaxSegments && b.to[j] == b.to[i] && b.ends[j]-start(i) <= gsoMaxBytes {
				if sz := size(j); sz != seg {
					if sz < seg && !(j == i+1 && j+1 < b.n && b.to[j+1] == b.to[j] && size(j+1) == sz) {
						j++ // the shorter last
					}
					break
				}
				j++
			}
		}
		m := ipv4.Message{Addr: &b.addrs[i]}
		b.iovs[len(b.msgs)][0] = b.data[start(i):b.ends[j-1]]
		m.Buffers = b.iovs[len(b.msgs)][:]
		if j-i > 1 {
			k := len(b.msgs) * gsoSpace
			m.OOB = b.oob[k : k+gsoSpace]
			putGSO(m.OOB, size(i))
		}
		b.first[len(b.msgs)] = i
		b.msgs = append(b.msgs, m)
		i = j
	}
}

// WriteToAddrPort writes one packet (pion's ICE mux writes this way).
func (c *batchConn) WriteToAddrPort(p []byte, addr netip.AddrPort) (int, error) {
	if c.pc == nil || !addr.Addr().Unmap().Is4() {
		return c.UDPConn.WriteToUDPAddrPort(p, addr)
	}
	c.mu.Lock()
	if c.corks == 0 {
		c.mu.Unlock()
		return c.UDPConn.WriteToUDPAddrPort(p, addr)
	}
	if c.cur == nil {
		switch n := len(c.free); {
		case n > 0:
			c.cur, c.free = c.free[n-1], c.free[:n-1]
		case c.batches < maxBatches:
			c.batches++
			c.cur = &batch{data: make([]byte, 0, batchBytes+1500), msgs: make([]ipv4.Message, 0, batchMax)}
		default:
			c.mu.Unlock()
			return c.UDPConn.WriteToUDPAddrPort(p, addr)
		}
	}
	b := c.cur
	b.data = append(b.data, p...)
	b.ends[b.n] = len(b.data)
	b.to[b.n] = addr
	b.ips[b.n] = addr.Addr().Unmap().As4()
	b.addrs[b.n] = net.UDPAddr{IP: b.ips[b.n][:], Port: int(addr.Port())}
	b.n++
	var full *batch
	if b.n == batchMax || len(b.data) >= batchBytes {
		full = c.takeLocked()
	}
	c.mu.Unlock()
	c.send(full)
	return len(p), nil
}

// ReadFromAddrPort reads one packet (pion's ICE mux reads this way).
func (c *batchConn) ReadFromAddrPort(p []byte) (int, netip.AddrPort, error) {
	return c.UDPConn.ReadFromUDPAddrPort(p)
}

// WriteTo writes one packet, batched as WriteToAddrPort.
func (c *batchConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if ua, ok := addr.(*net.UDPAddr); ok {
		return c.WriteToAddrPort(p, ua.AddrPort())
	}
	return c.UDPConn.WriteTo(p, addr)
}
