package whep

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/camd-project/camd/internal/testenv"
)

// TestBatchConnSendsCorkedPacketsTogether: packets written while corked
// wait until uncork (or until a batch is full) and then all arrive, in
// order, each at its own address; a packet written outside a cork goes
// at once.
func TestBatchConnSendsCorkedPacketsTogether(t *testing.T) {
	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	c, ok := newBatchConn(udp, testLogger()).(*batchConn)
	if !ok || c.pc == nil {
		t.Fatalf("an IPv4 UDP socket is not batched: %T", c)
	}
	peers, addrs := udpPeers(t)
	packet := func(i int) []byte { return bytes.Repeat([]byte(fmt.Sprintf("%04d", i)), 300) }
	pending := func(p *net.UDPConn) bool {
		p.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		defer p.SetReadDeadline(time.Time{})
		_, _, err := p.ReadFrom(make([]byte, 2000))
		return err == nil
	}
	expect := func(p *net.UDPConn, from, to, step int) {
		t.Helper()
		b := make([]byte, 2000)
		for i := from; i < to; i += step {
			p.SetReadDeadline(deadline(t))
			n, _, err := p.ReadFrom(b)
			if err != nil {
				t.Fatalf("packet %d: %v", i, err)
			}
			if !bytes.Equal(b[:n], packet(i)) {
				t.Fatalf("packet %d: got %q…", i, b[:8])
			}
		}
	}

	c.cork()
	for i := range 10 {
		if n, err := c.WriteToAddrPort(packet(i), addrs[i%2]); err != nil || n != 1200 {
			t.Fatalf("write %d: %d %v", i, n, err)
		}
	}
	if pending(peers[0]) {
		t.Fatal("a corked packet went out before uncork")
	}
	c.uncork()
	expect(peers[0], 0, 10, 2)
	expect(peers[1], 1, 10, 2)

	// Uncorked: at once.
	if _, err := c.WriteTo(packet(0), net.UDPAddrFromAddrPort(addrs[0])); err != nil {
		t.Fatal(err)
	}
	expect(peers[0], 0, 1, 1)

	// A full batch goes out without waiting for uncork.
	full := (batchBytes + 1199) / 1200
	c.cork()
	for i := range full {
		c.WriteToAddrPort(packet(i), addrs[0])
	}
	expect(peers[0], 0, full, 1)
	c.uncork()

	var none *batchConn
	none.cork()
	none.uncork()
}

// TestBatchConnSegments: with UDP GSO, a frame's packets to one viewer
// (a longer first packet, then packets of one size and a shorter last)
// leave as two messages, the second cut by the kernel, and arrive intact
// and in order; packets to different viewers are never in one message.
func TestBatchConnSegments(t *testing.T) {
	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	c := newBatchConn(udp, testLogger()).(*batchConn)
	testenv.Need(t, c.gso.Load(), "the kernel does not segment UDP (UDP_SEGMENT)")
	peers, addrs := udpPeers(t)
	// A frame of 6 packets: 1220, 4 × 1200, 700 bytes.
	frame := func(viewer int) [][]byte {
		var f [][]byte
		for i, n := range []int{1220, 1200, 1200, 1200, 1200, 700} {
			f = append(f, bytes.Repeat([]byte{byte(16*viewer + i)}, n))
		}
		return f
	}
	c.cork()
	for v := range peers {
		for _, p := range frame(v) {
			c.WriteToAddrPort(p, addrs[v])
		}
	}
	c.mu.Lock()
	b := c.cur
	b.messages(0, true)
	var layout []string
	for _, m := range b.msgs {
		layout = append(layout, fmt.Sprintf("%d/%d", len(m.Buffers[0]), len(m.OOB)))
	}
	c.mu.Unlock()
	want := fmt.Sprintf("[1220/0 5500/%d 1220/0 5500/%d]", gsoSpace, gsoSpace)
	if got := fmt.Sprint(layout); got != want {
		t.Errorf("messages (bytes/control) %s, want %s", got, want)
	}
	c.uncork()
	buf := make([]byte, 2000)
	for v, p := range peers {
		for i, want := range frame(v) {
			p.SetReadDeadline(deadline(t))
			n, _, err := p.ReadFrom(buf)
			if err != nil {
				t.Fatalf("viewer %d, packet %d: %v", v, i, err)
			}
			if !bytes.Equal(buf[:n], want) {
				t.Fatalf("viewer %d, packet %d: got %d bytes of %d, want %d of %d", v, i, n, buf[0], len(want), want[0])
			}
		}
	}
	if !c.gso.Load() {
		t.Error("segmentation was turned off on loopback")
	}
}

// udpPeers are two viewers' sockets on loopback and their addresses;
// they close when the test ends.
func udpPeers(t *testing.T) (peers [2]*net.UDPConn, addrs [2]netip.AddrPort) {
	t.Helper()
	for i := range peers {
		pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pc.Close() })
		pc.SetReadBuffer(1 << 20)
		peers[i], addrs[i] = pc, pc.LocalAddr().(*net.UDPAddr).AddrPort()
	}
	return peers, addrs
}
