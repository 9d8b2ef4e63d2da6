package wsd

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// ProbeOptions configure Probe.
type ProbeOptions struct {
	// Interfaces to probe on; nil means every interface that is up,
	// multicast-capable and not loopback.
	Interfaces []net.Interface
	// Types to probe for; nil means NetworkVideoTransmitter, what ONVIF
	// cameras answer.
	Types []xml.Name
}

// Found is a device that answered a probe.
type Found struct {
	Match
	// From is the address the answer came from.
	From netip.Addr `json:"from"`
}

// MulticastInterfaces lists the interfaces that are up, multicast-capable
// and not loopback.
func MulticastInterfaces() ([]net.Interface, error) {
	all, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("wsd: %w", err)
	}
	var out []net.Interface
	for _, ifi := range all {
		if ifi.Flags&net.FlagUp != 0 && ifi.Flags&net.FlagMulticast != 0 && ifi.Flags&net.FlagLoopback == 0 {
			out = append(out, ifi)
		}
	}
	return out, nil
}

type datagram struct {
	b    []byte
	from netip.Addr
}

// Probe multicasts a Probe on each interface, over IPv4 and IPv6, sends it
// again 100 ms later (SOAP-over-UDP repeats a multicast message; devices
// answer a MessageID once), and gathers the ProbeMatches that answer it
// until ctx ends. Devices are listed once each, by endpoint.
func Probe(ctx context.Context, o ProbeOptions) ([]Found, error) {
	ifaces := o.Interfaces
	if ifaces == nil {
		var err error
		if ifaces, err = MulticastInterfaces(); err != nil {
			return nil, err
		}
	}
	if len(ifaces) == 0 {
		return nil, ErrNoInterface
	}
	types := o.Types
	if types == nil {
		types = []xml.Name{NetworkVideoTransmitter}
	}
	msg, id := ProbeMessage(types...)

	answers := make(chan datagram, 64)
	var senders []func() int
	var errs []error
	// The readers end when their sockets close, before Probe returns.
	var readers sync.WaitGroup
	defer readers.Wait()
	if c, err := net.ListenUDP("udp4", &net.UDPAddr{}); err != nil {
		errs = append(errs, err)
	} else {
		defer c.Close()
		p := ipv4.NewPacketConn(c)
		p.SetMulticastTTL(1)
		senders = append(senders, func() int {
			n := 0
			for _, ifi := range ifaces {
				if _, err := p.WriteTo(msg, &ipv4.ControlMessage{IfIndex: ifi.Index}, &net.UDPAddr{IP: GroupV4.AsSlice(), Port: Port}); err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", ifi.Name, err))
					continue
				}
				n++
			}
			return n
		})
		readers.Go(func() { readAll(c, answers) })
	}
	if c, err := net.ListenUDP("udp6", &net.UDPAddr{}); err != nil {
		errs = append(errs, err)
	} else {
		defer c.Close()
		p := ipv6.NewPacketConn(c)
		p.SetMulticastHopLimit(1)
		senders = append(senders, func() int {
			n := 0
			for _, ifi := range ifaces {
				if _, err := p.WriteTo(msg, &ipv6.ControlMessage{IfIndex: ifi.Index}, &net.UDPAddr{IP: GroupV6.AsSlice(), Port: Port, Zone: ifi.Name}); err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", ifi.Name, err))
					continue
				}
				n++
			}
			return n
		})
		readers.Go(func() { readAll(c, answers) })
	}
	sent := 0
	for _, s := range senders {
		sent += s()
	}
	if sent == 0 {
		return nil, fmt.Errorf("wsd: probe not sent: %w", errors.Join(errs...))
	}

	byEndpoint := map[string]int{}
	var out []Found
	repeat := time.NewTimer(100 * time.Millisecond)
	defer repeat.Stop()
	for {
		select {
		case <-ctx.Done():
			return out, nil
		case <-repeat.C:
			for _, s := range senders {
				s()
			}
		case a := <-answers:
			m, err := Parse(a.b)
			if err != nil || m.Action != ActionProbeMatches || m.RelatesTo != id {
				continue
			}
			for _, match := range m.Matches {
				if match.Endpoint == "" {
					continue
				}
				if i, ok := byEndpoint[match.Endpoint]; ok {
					for _, x := range match.XAddrs {
						if !slices.Contains(out[i].XAddrs, x) {
							out[i].XAddrs = append(out[i].XAddrs, x)
						}
					}
					continue
				}
				if len(out) < 1024 {
					byEndpoint[match.Endpoint] = len(out)
					out = append(out, Found{Match: match, From: a.from})
				}
			}
		}
	}
}

// readAll passes every datagram read from c to out until c is closed.
func readAll(c *net.UDPConn, out chan<- datagram) {
	buf := make([]byte, MaxMessage+1)
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if n > MaxMessage {
			continue
		}
		select {
		case out <- datagram{b: slices.Clone(buf[:n]), from: from.Addr().Unmap()}:
		default: // the reader is behind or gone: drop
		}
	}
}
