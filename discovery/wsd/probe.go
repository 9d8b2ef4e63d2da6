package wsd

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/camd-project/camd/discovery/internal/ratelimit"
)

// ProbeOptions configure Probe.
type ProbeOptions struct {
	// Interfaces to probe on; nil means every interface that is up,
	// multicast-capable and not loopback.
	Interfaces []net.Interface
	// Types to probe for; nil means NetworkVideoTransmitter, what ONVIF
	// cameras answer.
	Types []xml.Name
	// MaxDevices bounds the devices listed (DefaultMaxDevices when 0);
	// answers from devices beyond it are dropped.
	MaxDevices int
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

// Bounds of what a probe keeps, whatever the LAN sends.
const (
	// DefaultMaxDevices is ProbeOptions.MaxDevices's default.
	DefaultMaxDevices = 1024
	// maxXAddrs bounds the addresses kept per device.
	maxXAddrs = 8
	// Answers read per sender before the probe stops reading its
	// datagrams: a camera sends one ProbeMatch per probe it hears (two
	// probes, over IPv4 and IPv6), a flooding neighbour many more.
	perSenderRate  = 8
	perSenderBurst = 16
)

// Prober is a probe under way: Probe is OpenProbe then Gather. The split
// lets a caller open the sockets where it stands (a network namespace
// entered by its thread) and gather on another goroutine.
type Prober struct {
	ifaces  []net.Interface
	msg     []byte
	id      string
	max     int
	conns   []*net.UDPConn
	senders []func() (int, []error)
	answers chan datagram
	readers sync.WaitGroup
	once    sync.Once
}

// Probe multicasts a Probe on each interface, over IPv4 and IPv6, sends it
// again 100 ms later (SOAP-over-UDP repeats a multicast message; devices
// answer a MessageID once), and gathers the ProbeMatches that answer it
// until ctx ends. Devices are listed once each, by endpoint.
func Probe(ctx context.Context, o ProbeOptions) ([]Found, error) {
	p, err := OpenProbe(o)
	if err != nil {
		return nil, err
	}
	return p.Gather(ctx)
}

// OpenProbe opens the sockets of a probe on the calling goroutine and
// sends nothing yet.
func OpenProbe(o ProbeOptions) (*Prober, error) {
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
	p := &Prober{ifaces: ifaces, max: o.MaxDevices, answers: make(chan datagram, 64)}
	if p.max <= 0 {
		p.max = DefaultMaxDevices
	}
	p.msg, p.id = ProbeMessage(types...)
	var errs []error
	if c, err := net.ListenUDP("udp4", &net.UDPAddr{}); err != nil {
		errs = append(errs, err)
	} else {
		pc := ipv4.NewPacketConn(c)
		pc.SetMulticastTTL(1)
		p.conns = append(p.conns, c)
		p.senders = append(p.senders, func() (n int, errs []error) {
			for _, ifi := range ifaces {
				if _, err := pc.WriteTo(p.msg, &ipv4.ControlMessage{IfIndex: ifi.Index}, &net.UDPAddr{IP: GroupV4.AsSlice(), Port: Port}); err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", ifi.Name, err))
					continue
				}
				n++
			}
			return n, errs
		})
	}
	if c, err := net.ListenUDP("udp6", &net.UDPAddr{}); err != nil {
		errs = append(errs, err)
	} else {
		pc := ipv6.NewPacketConn(c)
		pc.SetMulticastHopLimit(1)
		p.conns = append(p.conns, c)
		p.senders = append(p.senders, func() (n int, errs []error) {
			for _, ifi := range ifaces {
				if _, err := pc.WriteTo(p.msg, &ipv6.ControlMessage{IfIndex: ifi.Index}, &net.UDPAddr{IP: GroupV6.AsSlice(), Port: Port, Zone: ifi.Name}); err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", ifi.Name, err))
					continue
				}
				n++
			}
			return n, errs
		})
	}
	if len(p.conns) == 0 {
		return nil, fmt.Errorf("wsd: probe not sent: %w", errors.Join(errs...))
	}
	return p, nil
}

// Close closes the probe's sockets and waits for its readers. It is safe
// to call twice; Gather calls it.
func (p *Prober) Close() {
	p.once.Do(func() {
		for _, c := range p.conns {
			c.Close()
		}
	})
	p.readers.Wait()
}

// Gather sends the probe (twice, 100 ms apart) and gathers the
// ProbeMatches that answer it until ctx ends, then closes the probe. It
// keeps at most ProbeOptions.MaxDevices devices and 8 addresses each, and
// reads at most 8 datagrams a second (burst 16) from one sender.
func (p *Prober) Gather(ctx context.Context) ([]Found, error) {
	defer p.Close()
	for _, c := range p.conns {
		p.readers.Go(func() { readAll(c, p.answers) })
	}
	sent := 0
	var errs []error
	for _, s := range p.senders {
		n, e := s()
		sent += n
		errs = append(errs, e...)
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
			for _, s := range p.senders {
				s()
			}
		case a := <-p.answers:
			m, err := Parse(a.b)
			if err != nil || m.Action != ActionProbeMatches || m.RelatesTo != p.id {
				continue
			}
			for _, match := range m.Matches {
				if match.Endpoint == "" {
					continue
				}
				if i, ok := byEndpoint[match.Endpoint]; ok {
					for _, x := range match.XAddrs {
						if len(out[i].XAddrs) < maxXAddrs && !slices.Contains(out[i].XAddrs, x) {
							out[i].XAddrs = append(out[i].XAddrs, x)
						}
					}
					continue
				}
				if len(out) < p.max {
					if len(match.XAddrs) > maxXAddrs {
						match.XAddrs = match.XAddrs[:maxXAddrs:maxXAddrs]
					}
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
	limit := ratelimit.New(ratelimit.Options{PerAddrRate: perSenderRate, PerAddrBurst: perSenderBurst, Rate: math.MaxFloat64, Burst: math.MaxInt32})
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if n > MaxMessage || !limit.Allow(time.Now(), from.Addr().Unmap()) {
			continue
		}
		select {
		case out <- datagram{b: slices.Clone(buf[:n]), from: from.Addr().Unmap()}:
		default: // the reader is behind or gone: drop
		}
	}
}
