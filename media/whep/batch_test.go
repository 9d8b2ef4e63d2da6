package whep

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"
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
	var peers [2]*net.UDPConn
	var addrs [2]netip.AddrPort
	for i := range peers {
		pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		pc.SetReadBuffer(1 << 20)
		peers[i], addrs[i] = pc, pc.LocalAddr().(*net.UDPAddr).AddrPort()
	}
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
