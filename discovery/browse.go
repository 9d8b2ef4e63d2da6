package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/camd-project/camd/discovery/internal/mcast"
)

// Camera is a camera found on the LAN.
type Camera struct {
	// Name is the DNS-SD instance name, the camera's friendly name.
	Name string `json:"name"`
	Info
	// Added is whether this client already added (paired with) the
	// camera, as BrowseOptions.Added says.
	Added bool `json:"added"`
	// Host is the host name the SRV record points at (….local.).
	Host string `json:"host"`
	Port int    `json:"port"`
	// Addrs are the camera's addresses, IPv4 first; IPv6 link-local ones
	// carry the zone of the interface they were seen on.
	Addrs []netip.Addr `json:"addrs"`
	// Interface is where the camera was seen.
	Interface string `json:"interface,omitempty"`
	// TXT is the record as received.
	TXT []string `json:"txt"`
}

// Addr is host:port for the camera's first address, or "" without one.
func (c Camera) Addr() string {
	if len(c.Addrs) == 0 {
		return ""
	}
	return netip.AddrPortFrom(c.Addrs[0], uint16(c.Port)).String()
}

// BrowseOptions configure Browse.
type BrowseOptions struct {
	// Interfaces are the names of the interfaces to browse on; empty
	// means every interface that is up, multicast-capable and not
	// loopback.
	Interfaces []string
	// Added tells whether a device ID was already added by this client;
	// nil means none was.
	Added func(id string) bool
	// Changed, if set, is called (from Browse's goroutine) when a camera
	// appears or changes (gone false) and when it leaves or expires (gone
	// true).
	Changed func(c Camera, gone bool)
	Logger  *slog.Logger
}

// ErrNoInterface is returned when there is no interface to browse on.
var ErrNoInterface = errors.New("discovery: no multicast-capable interface")

var (
	serviceName = ServiceType + ".local."
	mdnsV4      = &net.UDPAddr{IP: net.IPv4(224, 0, 0, 251), Port: 5353}
	mdnsV6      = &net.UDPAddr{IP: net.ParseIP("ff02::fb"), Port: 5353}
)

// Browse queries for _camd._tcp until ctx ends and returns the cameras
// present then, sorted by name. It queries at once (asking for a unicast
// reply), then after 1 s, 2 s, 4 s… (RFC 6762 §5.2), listens to
// announcements and goodbyes, and asks again for what a partial answer
// left out and for a listed camera's records before they expire.
func Browse(ctx context.Context, o BrowseOptions) ([]Camera, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	ifaces, err := browseInterfaces(o.Interfaces)
	if err != nil {
		return nil, err
	}
	b := newBrowser(o, ifaces)
	q, err := openQuerier(ifaces)
	if err != nil {
		return nil, err
	}
	packets := make(chan packet, 64)
	var wg sync.WaitGroup
	q.read(&wg, packets)
	defer func() {
		q.close()
		wg.Wait()
	}()

	q.send(askQuery())
	interval := time.Second
	nextQuery := time.Now().Add(interval)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return b.cameras(), nil
		case p := <-packets:
			b.handle(p.b, p.ifIndex, time.Now())
		case now := <-tick.C:
			b.reconcile(now)
			if now.After(nextQuery) {
				q.send(b.query(now))
				interval = min(2*interval, time.Minute)
				nextQuery = now.Add(interval)
			}
			q.send(b.missing(now))
		}
	}
}

func browseInterfaces(names []string) ([]net.Interface, error) {
	all, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("discovery: interfaces: %w", err)
	}
	var out []net.Interface
	for _, ifi := range all {
		if len(names) > 0 && !slices.Contains(names, ifi.Name) {
			continue
		}
		if ifi.Flags&net.FlagUp == 0 || ifi.Flags&net.FlagMulticast == 0 {
			continue
		}
		if len(names) == 0 && ifi.Flags&net.FlagLoopback != 0 {
			continue
		}
		out = append(out, ifi)
	}
	if len(out) == 0 {
		if len(names) > 0 {
			return nil, fmt.Errorf("%w among %s", ErrNoInterface, strings.Join(names, ", "))
		}
		return nil, ErrNoInterface
	}
	return out, nil
}

type packet struct {
	b       []byte
	ifIndex int
}

// querier holds the mDNS sockets of a browse: bound to port 5353 (so that
// multicast answers reach it) and joined to the groups on each interface.
type querier struct {
	ifaces []net.Interface
	v4     *ipv4.PacketConn
	v6     *ipv6.PacketConn
}

func openQuerier(ifaces []net.Interface) (*querier, error) {
	q := &querier{ifaces: ifaces}
	var errs4, errs6 []error
	q.v4, errs4 = mcast.Listen4(mdnsV4, ifaces, func(p *ipv4.PacketConn) {
		p.SetControlMessage(ipv4.FlagInterface, true)
		p.SetMulticastTTL(255)
	})
	q.v6, errs6 = mcast.Listen6(mdnsV6, ifaces, func(p *ipv6.PacketConn) {
		p.SetControlMessage(ipv6.FlagInterface, true)
		p.SetMulticastHopLimit(255)
	})
	if q.v4 == nil && q.v6 == nil {
		return nil, fmt.Errorf("%w: %w", ErrNoInterface, errors.Join(append(errs4, errs6...)...))
	}
	return q, nil
}

func (q *querier) read(wg *sync.WaitGroup, out chan<- packet) {
	forward := func(d mcast.Datagram) {
		select {
		case out <- packet{b: slices.Clone(d.B), ifIndex: d.IfIndex}:
		default: // behind: drop, a later answer or query repairs it
		}
	}
	if q.v4 != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mcast.Read4(q.v4, maxDatagram, forward)
		}()
	}
	if q.v6 != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mcast.Read6(q.v6, maxDatagram, forward)
		}()
	}
}

func (q *querier) send(m *dns.Msg) {
	if m == nil {
		return
	}
	b, err := m.Pack()
	if err != nil {
		return
	}
	for _, ifi := range q.ifaces {
		if q.v4 != nil {
			q.v4.WriteTo(b, &ipv4.ControlMessage{IfIndex: ifi.Index}, mdnsV4)
		}
		if q.v6 != nil {
			q.v6.WriteTo(b, &ipv6.ControlMessage{IfIndex: ifi.Index}, mdnsV6)
		}
	}
}

func (q *querier) close() {
	if q.v4 != nil {
		q.v4.Close()
	}
	if q.v6 != nil {
		q.v6.Close()
	}
}

// Bounds on what a browse keeps, whatever the LAN sends.
const (
	maxInstances = 256
	maxHosts     = 256
	maxAddrs     = 8
)

// record is a cached record: its value, when it expires, and when to ask
// for it again before then (RFC 6762 §5.2: at 80 % of its TTL, then 85,
// 90 and 95 %).
type record[T any] struct {
	v       T
	exp     time.Time
	refresh time.Time
	ttl     time.Duration
}

func newRecord[T any](v T, now time.Time, ttl uint32) record[T] {
	d := time.Duration(ttl) * time.Second
	return record[T]{v: v, exp: now.Add(d), refresh: now.Add(d * 4 / 5), ttl: d}
}

// stale reports whether the record is due to be asked for again.
func (r *record[T]) stale(now time.Time) bool {
	return r.ttl > 0 && !r.refresh.After(now) && r.exp.After(now)
}

// asked moves the next refresh 5 % of the TTL later; after 95 % there is
// none.
func (r *record[T]) asked(now time.Time) {
	if r.stale(now) {
		r.refresh = r.refresh.Add(r.ttl / 20)
		if r.exp.Sub(r.refresh) < r.ttl/20 {
			r.refresh = r.exp
		}
	}
}

type instance struct {
	name    string // fully qualified, lower case: the cache key
	fqdn    string // fully qualified, as received
	label   string // the instance label, unescaped
	ptr     time.Time
	srv     record[*dns.SRV]
	txt     record[[]string]
	ifIndex int
	asked   time.Time
}

// browser is the cache of one browse. It is used from one goroutine.
type browser struct {
	o         BrowseOptions
	ifaces    map[int]string
	instances map[string]*instance
	hosts     map[string]map[netip.Addr]record[struct{}]
	reported  map[string]Camera
	malformed int
}

func newBrowser(o BrowseOptions, ifaces []net.Interface) *browser {
	b := &browser{
		o: o, ifaces: map[int]string{},
		instances: map[string]*instance{},
		hosts:     map[string]map[netip.Addr]record[struct{}]{},
		reported:  map[string]Camera{},
	}
	for _, ifi := range ifaces {
		b.ifaces[ifi.Index] = ifi.Name
	}
	return b
}

// handle takes one datagram that arrived on ifIndex.
func (b *browser) handle(pkt []byte, ifIndex int, now time.Time) {
	if _, ok := b.ifaces[ifIndex]; !ok {
		return
	}
	var m dns.Msg
	if err := m.Unpack(pkt); err != nil {
		b.malformed++
		return
	}
	if !m.Response || m.Opcode != dns.OpcodeQuery || m.Rcode != dns.RcodeSuccess {
		return
	}
	rrs := append(append(m.Answer, m.Ns...), m.Extra...)
	for _, rr := range rrs {
		h := rr.Header()
		name := strings.ToLower(h.Name)
		exp := now.Add(time.Duration(h.Ttl) * time.Second)
		switch rr := rr.(type) {
		case *dns.PTR:
			if name != serviceName {
				continue
			}
			in := b.instance(rr.Ptr, ifIndex)
			if in == nil {
				continue
			}
			if h.Ttl == 0 {
				delete(b.instances, in.name)
				continue
			}
			in.ptr = exp
		case *dns.SRV:
			if in := b.instance(h.Name, ifIndex); in != nil {
				in.srv = newRecord(rr, now, h.Ttl)
			}
		case *dns.TXT:
			if in := b.instance(h.Name, ifIndex); in != nil {
				in.txt = newRecord(rr.Txt, now, h.Ttl)
			}
		case *dns.A:
			b.addr(name, rr.A, ifIndex, h.Ttl, now)
		case *dns.AAAA:
			b.addr(name, rr.AAAA, ifIndex, h.Ttl, now)
		}
	}
	b.reconcile(now)
}

// instance finds or creates the cache entry of a service instance name.
func (b *browser) instance(fqdn string, ifIndex int) *instance {
	name := strings.ToLower(fqdn)
	if !strings.HasSuffix(name, "."+serviceName) {
		return nil
	}
	in := b.instances[name]
	if in == nil {
		label, ok := firstLabel(fqdn[:len(fqdn)-len(serviceName)-1])
		if !ok || len(b.instances) >= maxInstances {
			return nil
		}
		in = &instance{name: name, fqdn: fqdn, label: label}
		b.instances[name] = in
	}
	in.ifIndex = ifIndex
	return in
}

func (b *browser) addr(host string, ip net.IP, ifIndex int, ttl uint32, now time.Time) {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return
	}
	a = a.Unmap()
	if a.Is6() && (a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast()) {
		a = a.WithZone(b.ifaces[ifIndex])
	}
	addrs := b.hosts[host]
	if addrs == nil {
		if ttl == 0 || len(b.hosts) >= maxHosts {
			return
		}
		addrs = map[netip.Addr]record[struct{}]{}
		b.hosts[host] = addrs
	}
	if ttl == 0 {
		delete(addrs, a)
		return
	}
	if _, ok := addrs[a]; ok || len(addrs) < maxAddrs {
		addrs[a] = newRecord(struct{}{}, now, ttl)
	}
}

// firstLabel unescapes a presentation-format label ("Front\ Door",
// "Front\032Door", "My\.Cam").
func firstLabel(s string) (string, bool) {
	var out []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+3 < len(s) && isDigit(s[i+1]) && isDigit(s[i+2]) && isDigit(s[i+3]):
			n := int(s[i+1]-'0')*100 + int(s[i+2]-'0')*10 + int(s[i+3]-'0')
			if n > 255 {
				return "", false
			}
			out = append(out, byte(n))
			i += 3
		case c == '\\' && i+1 < len(s):
			out = append(out, s[i+1])
			i++
		case c == '.':
			return "", false // more than one label
		default:
			out = append(out, c)
		}
	}
	return string(out), len(out) > 0
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// complete builds the camera of an instance whose records are all here.
func (b *browser) complete(in *instance, now time.Time) (Camera, bool) {
	if !in.ptr.After(now) || in.srv.v == nil || !in.srv.exp.After(now) || !in.txt.exp.After(now) {
		return Camera{}, false
	}
	info, ok := ParseTXT(in.txt.v)
	if !ok {
		return Camera{}, false
	}
	host := strings.ToLower(in.srv.v.Target)
	var addrs []netip.Addr
	for a, r := range b.hosts[host] {
		if r.exp.After(now) {
			addrs = append(addrs, a)
		}
	}
	if len(addrs) == 0 {
		return Camera{}, false
	}
	slices.SortFunc(addrs, func(x, y netip.Addr) int {
		if x.Is4() != y.Is4() {
			if x.Is4() {
				return -1
			}
			return 1
		}
		return x.Compare(y)
	})
	c := Camera{
		Name: in.label, Info: info, Host: in.srv.v.Target, Port: int(in.srv.v.Port),
		Addrs: addrs, Interface: b.ifaces[in.ifIndex], TXT: slices.Clone(in.txt.v),
	}
	if b.o.Added != nil {
		c.Added = b.o.Added(info.ID)
	}
	return c, true
}

// reconcile drops what expired and reports what changed.
func (b *browser) reconcile(now time.Time) {
	for name, in := range b.instances {
		if !in.ptr.IsZero() && !in.ptr.After(now) {
			delete(b.instances, name)
		}
	}
	for host, addrs := range b.hosts {
		for a, r := range addrs {
			if !r.exp.After(now) {
				delete(addrs, a)
			}
		}
		if len(addrs) == 0 {
			delete(b.hosts, host)
		}
	}
	for name, in := range b.instances {
		c, ok := b.complete(in, now)
		if !ok {
			continue
		}
		if old, seen := b.reported[name]; seen && sameCamera(old, c) {
			continue
		}
		b.reported[name] = c
		if b.o.Changed != nil {
			b.o.Changed(c, false)
		}
	}
	for name, old := range b.reported {
		in := b.instances[name]
		if in != nil {
			if _, ok := b.complete(in, now); ok {
				continue
			}
		}
		delete(b.reported, name)
		if b.o.Changed != nil {
			b.o.Changed(old, true)
		}
	}
}

func sameCamera(a, b Camera) bool {
	return a.Name == b.Name && a.Info == b.Info && a.Added == b.Added && a.Host == b.Host && a.Port == b.Port &&
		slices.Equal(a.Addrs, b.Addrs) && slices.Equal(a.TXT, b.TXT)
}

// query is the PTR question with the answers already known (RFC 6762
// §7.1), so that cameras already listed do not answer again.
func (b *browser) query(now time.Time) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(serviceName, dns.TypePTR)
	m.RecursionDesired = false
	for _, in := range b.instances {
		if _, ok := b.reported[in.name]; !ok {
			continue
		}
		left := in.ptr.Sub(now)
		if left <= 0 {
			continue
		}
		// a known answer counts only if more than half its TTL is left:
		// the cache keeps the expiry, so use what is left as the TTL.
		m.Answer = append(m.Answer, &dns.PTR{
			Hdr: dns.RR_Header{Name: serviceName, Rrtype: dns.TypePTR, Class: dns.ClassINET, Ttl: uint32(left / time.Second)},
			Ptr: in.fqdn,
		})
	}
	return m
}

// missing asks again, at most once a second, when an instance lacks a
// record or a record of a listed camera is due for refresh. It asks the
// plain PTR question, with no known answers, which brings the SRV, TXT and
// address records along (camd's earlier responder, zeroconf's, answered
// no direct SRV or A question for a name with a space in it).
func (b *browser) missing(now time.Time) *dns.Msg {
	for _, in := range b.instances {
		_, listed := b.reported[in.name]
		if now.Sub(in.asked) < time.Second || in.ptr.IsZero() || (listed && !b.stale(in, now)) {
			continue
		}
		for _, in := range b.instances {
			in.asked = now
			in.srv.asked(now)
			in.txt.asked(now)
			if in.srv.v != nil {
				for a, r := range b.hosts[strings.ToLower(in.srv.v.Target)] {
					r.asked(now)
					b.hosts[strings.ToLower(in.srv.v.Target)][a] = r
				}
			}
		}
		return askQuery()
	}
	return nil
}

// stale reports whether a record of a listed instance is due for refresh.
func (b *browser) stale(in *instance, now time.Time) bool {
	if in.srv.stale(now) || in.txt.stale(now) {
		return true
	}
	if in.srv.v != nil {
		for _, r := range b.hosts[strings.ToLower(in.srv.v.Target)] {
			if r.stale(now) {
				return true
			}
		}
	}
	return false
}

// queryPadding is the size the browser pads a query asking for a unicast
// reply to. A camd responder replies by unicast with at most 3 × the
// query's size (see docs/discovery.md); 768 bytes hold the PTR, SRV, TXT
// and address records of a camera.
const queryPadding = 256

// askQuery is the PTR question with the unicast-response bit (QU, RFC
// 6762 §5.4), as a querier's first question should be, padded with EDNS(0)
// padding (RFC 7830) to queryPadding bytes: a responder that has
// multicast the records lately answers at once by unicast, rather than
// by a multicast it may have to delay up to a second.
func askQuery() *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(serviceName, dns.TypePTR)
	m.RecursionDesired = false
	m.Question[0].Qclass |= 1 << 15
	b, err := m.Pack()
	if err != nil {
		return m
	}
	const optSize = 11 + 4 // an OPT record with one option, empty
	if pad := queryPadding - len(b) - optSize; pad > 0 {
		opt := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT, Class: dns.DefaultMsgSize}}
		opt.Option = append(opt.Option, &dns.EDNS0_PADDING{Padding: make([]byte, pad)})
		m.Extra = append(m.Extra, opt)
	}
	return m
}

// cameras lists what is present, sorted by name.
func (b *browser) cameras() []Camera {
	out := make([]Camera, 0, len(b.reported))
	for _, c := range b.reported {
		out = append(out, c)
	}
	slices.SortFunc(out, func(x, y Camera) int { return strings.Compare(x.Name, y.Name) })
	return out
}
