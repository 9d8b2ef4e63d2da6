package discovery

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/camd-project/camd/discovery/internal/mcast"
)

// mdnsServer runs the responder on the mDNS sockets: UDP port 5353 over
// IPv4 and IPv6, joined to the groups on the links chosen. Two goroutines
// read; one loop owns the responder and sends.
type mdnsServer struct {
	// sent counts the datagrams sent (answers and announcements).
	sent atomic.Uint64
	v4   *ipv4.PacketConn
	v6   *ipv6.PacketConn
	// joined says where each socket joined its group; owned by the loop
	joined4, joined6 map[int]bool

	r       *responder
	in      chan inPacket
	updates chan update
	done    chan struct{}
	stopped chan struct{}
	wg      sync.WaitGroup
	once    sync.Once
	dropped atomic.Uint64 // datagrams dropped: the loop was behind
	log     *slog.Logger
	// renamed is called on the loop when another host wins our instance
	// name (while camd probes for it, or after); it must not block.
	renamed func()
}

type inPacket struct {
	b       []byte
	src     netip.AddrPort
	dst     netip.Addr
	ifIndex int
}

type update struct {
	links []link
	svc   service
	err   chan error
}

// listenMDNS opens the mDNS sockets. set gives them links and records;
// renamed is called when another host wins the instance name.
func listenMDNS(log *slog.Logger, renamed func()) (*mdnsServer, error) {
	s := &mdnsServer{
		joined4: map[int]bool{}, joined6: map[int]bool{},
		r:       newResponder(),
		in:      make(chan inPacket, 64),
		updates: make(chan update),
		done:    make(chan struct{}),
		stopped: make(chan struct{}),
		log:     log,
		renamed: renamed,
	}
	var errs []error
	if c, err := net.ListenUDP("udp4", mdnsV4); err != nil {
		errs = append(errs, err)
	} else {
		p := ipv4.NewPacketConn(c)
		if err := p.SetControlMessage(ipv4.FlagInterface|ipv4.FlagDst, true); err != nil {
			c.Close()
			errs = append(errs, err)
		} else {
			p.SetMulticastTTL(255) // §11: every response with TTL 255
			p.SetTTL(255)
			s.v4 = p
		}
	}
	if c, err := net.ListenUDP("udp6", mdnsV6); err != nil {
		errs = append(errs, err)
	} else {
		p := ipv6.NewPacketConn(c)
		if err := p.SetControlMessage(ipv6.FlagInterface|ipv6.FlagDst, true); err != nil {
			c.Close()
			errs = append(errs, err)
		} else {
			p.SetMulticastHopLimit(255)
			p.SetHopLimit(255)
			s.v6 = p
		}
	}
	if s.v4 == nil && s.v6 == nil {
		return nil, fmt.Errorf("discovery: mDNS sockets: %w", errors.Join(errs...))
	}
	if s.v4 != nil {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			mcast.Read4(s.v4, maxDatagram+1, s.forward)
		}()
	}
	if s.v6 != nil {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			mcast.Read6(s.v6, maxDatagram+1, s.forward)
		}()
	}
	go s.run()
	return s, nil
}

// set answers for svc on links from now on: it joins the groups on new
// links, announces what changed and says goodbye on links left. It fails
// when no group could be joined on any link.
func (s *mdnsServer) set(links []link, svc service) error {
	u := update{links: links, svc: svc, err: make(chan error, 1)}
	select {
	case s.updates <- u:
		return <-u.err
	case <-s.stopped:
		return errors.New("discovery: mDNS responder closed")
	}
}

// close says goodbye, closes the sockets and waits for the goroutines.
// It is safe to call twice.
func (s *mdnsServer) close() {
	s.once.Do(func() {
		close(s.done)
		<-s.stopped
		if s.v4 != nil {
			s.v4.Close()
		}
		if s.v6 != nil {
			s.v6.Close()
		}
		s.wg.Wait()
		st := s.r.stats
		s.log.Debug("discovery: mDNS responder stopped", "received", st.Received, "malformed", st.Malformed,
			"ignored", st.Ignored, "off_link", st.OffLink, "not_ours", st.NotOurs, "known_answers", st.KnownAnswers,
			"multicast", st.Multicast, "unicast", st.Unicast, "limited", st.Limited, "oversize", st.Oversize,
			"truncated", st.Truncated, "conflicts", st.Conflicts, "probes", st.Probes, "dropped", s.dropped.Load())
	})
}

func (s *mdnsServer) run() {
	defer close(s.stopped)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		var wake <-chan time.Time
		if next := s.r.next(); !next.IsZero() {
			timer.Reset(time.Until(next))
			wake = timer.C
		}
		select {
		case <-s.done:
			s.send(s.r.close())
			return
		case p := <-s.in:
			s.send(s.r.handle(time.Now(), p.b, p.src, p.dst, p.ifIndex))
			if s.r.takeSlowed() {
				s.log.Warn("discovery: another device on the LAN keeps claiming camd's mDNS names; probing for one at most every 5 s",
					"conflicts", maxConflicts, "within", conflictWindow)
			}
			if s.r.takeRename() && s.renamed != nil {
				s.renamed()
			}
		case u := <-s.updates:
			u.err <- s.apply(u)
		case <-wake:
		}
		s.send(s.r.due(time.Now()))
	}
}

// apply runs an update on the loop.
func (s *mdnsServer) apply(u update) error {
	want := map[int]bool{}
	var errs []error
	for _, l := range u.links {
		ifi := l.Iface
		want[ifi.Index] = true
		if s.v4 != nil && !s.joined4[ifi.Index] {
			if err := join(s.v4, mdnsV4, s.joined4, ifi); err != nil {
				errs = append(errs, fmt.Errorf("%s: IPv4: %w", ifi.Name, err))
			}
		}
		if s.v6 != nil && !s.joined6[ifi.Index] {
			if err := join(s.v6, mdnsV6, s.joined6, ifi); err != nil {
				errs = append(errs, fmt.Errorf("%s: IPv6: %w", ifi.Name, err))
			}
		}
	}
	s.send(s.r.setLinks(time.Now(), u.links, u.svc))
	if s.v4 != nil {
		leaveUnwanted(s.v4, mdnsV4, s.joined4, want)
	}
	if s.v6 != nil {
		leaveUnwanted(s.v6, mdnsV6, s.joined6, want)
	}
	if len(errs) > 0 {
		s.log.Debug("discovery: mDNS group not joined", "err", errors.Join(errs...))
	}
	if len(s.joined4) == 0 && len(s.joined6) == 0 && len(u.links) > 0 {
		return fmt.Errorf("discovery: no mDNS group joined: %w", errors.Join(errs...))
	}
	return nil
}

// groupConn is an mDNS socket's group membership: *ipv4.PacketConn or
// *ipv6.PacketConn.
type groupConn interface {
	JoinGroup(ifi *net.Interface, group net.Addr) error
	LeaveGroup(ifi *net.Interface, group net.Addr) error
}

// join joins the mDNS group (of the family of group, mdnsV4 or mdnsV6)
// through c on ifi, and marks it in joined.
func join(c groupConn, group *net.UDPAddr, joined map[int]bool, ifi net.Interface) error {
	if err := c.JoinGroup(&ifi, &net.UDPAddr{IP: group.IP}); err != nil {
		return err
	}
	joined[ifi.Index] = true
	return nil
}

// leaveUnwanted leaves the group through c on the interfaces in joined
// that want does not hold, and forgets them.
func leaveUnwanted(c groupConn, group *net.UDPAddr, joined, want map[int]bool) {
	for idx := range joined {
		if !want[idx] {
			if ifi, err := net.InterfaceByIndex(idx); err == nil {
				c.LeaveGroup(ifi, &net.UDPAddr{IP: group.IP})
			}
			delete(joined, idx)
		}
	}
}

// send writes datagrams; a multicast one only where the socket joined its
// group (a link without IPv6, say, gets no IPv6 copy).
func (s *mdnsServer) send(out []outPacket) {
	for _, o := range out {
		if o.v6 {
			if s.v6 == nil || (!o.to.IsValid() && !s.joined6[o.ifIndex]) {
				continue
			}
			to := mdnsV6
			if o.to.IsValid() {
				to = net.UDPAddrFromAddrPort(o.to)
			}
			if _, err := s.v6.WriteTo(o.b, &ipv6.ControlMessage{IfIndex: o.ifIndex}, to); err == nil {
				s.sent.Add(1)
			}
			continue
		}
		if s.v4 == nil || (!o.to.IsValid() && !s.joined4[o.ifIndex]) {
			continue
		}
		to := mdnsV4
		if o.to.IsValid() {
			to = net.UDPAddrFromAddrPort(o.to)
		}
		if _, err := s.v4.WriteTo(o.b, &ipv4.ControlMessage{IfIndex: o.ifIndex}, to); err == nil {
			s.sent.Add(1)
		}
	}
}

// forward passes a datagram to the loop, or drops it when the loop is
// behind: a flood costs a bounded queue, not memory.
func (s *mdnsServer) forward(d mcast.Datagram) {
	b := d.B
	if len(b) > maxDatagram {
		b = b[:maxDatagram+1] // the responder counts it as malformed
	}
	select {
	case s.in <- inPacket{b: append([]byte(nil), b...), src: d.From, dst: d.Dst, ifIndex: d.IfIndex}:
	default:
		s.dropped.Add(1)
	}
}
