package discovery

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// TTLs of the records camd announces (RFC 6762 §10): 120 s for those that
// carry or name a host (SRV, A, AAAA), 75 minutes for the others.
const (
	hostTTL   = 120
	otherTTL  = 4500
	legacyTTL = 10 // §6.7: the most a legacy unicast reply may give
	flushBit  = 1 << 15
	// maxLinkAddrs bounds the addresses announced on one link (a browse
	// keeps as many per host).
	maxLinkAddrs = 8
	// maxLabel is the longest DNS label, in bytes.
	maxLabel = 63
)

// servicesName is the DNS-SD service type enumeration name (RFC 6763 §9).
const servicesName = "_services._dns-sd._udp.local."

// service is what the mDNS responder announces: one DNS-SD instance of
// _camd._tcp.
type service struct {
	instance string // the instance label, escaped as miekg/dns expects
	host     string // the SRV target, fully qualified
	port     int
	txt      []string
}

// recordKind says what a record is for, which decides what goes in the
// additional section with it (RFC 6763 §12).
type recordKind int

const (
	kindPTR  recordKind = iota // _camd._tcp.local. → the instance
	kindSRV                    // the instance → host and port
	kindTXT                    // the instance's TXT
	kindA                      // the host's IPv4 addresses
	kindAAAA                   // the host's IPv6 addresses
	kindEnum                   // _services._dns-sd._udp.local. → _camd._tcp.local.
)

// ownRecord is one of ours, its names in the presentation form miekg/dns
// unpacks to, so that they compare with strings.EqualFold.
type ownRecord struct {
	rr   dns.RR // TTL and class as announced (cache-flush bit on unique records)
	key  string // owner, type and data: the same record across updates
	kind recordKind
}

// records lists what is announced on a link with addresses addrs.
func (s service) records(addrs []netip.Addr) []ownRecord {
	instance := canonical(s.instance + "." + serviceName)
	host := canonical(s.host)
	hdr := func(name string, t uint16, ttl uint32, unique bool) dns.RR_Header {
		class := uint16(dns.ClassINET)
		if unique {
			class |= flushBit
		}
		return dns.RR_Header{Name: name, Rrtype: t, Class: class, Ttl: ttl}
	}
	recs := []ownRecord{
		{rr: &dns.PTR{Hdr: hdr(serviceName, dns.TypePTR, otherTTL, false), Ptr: instance}, kind: kindPTR},
		{rr: &dns.SRV{Hdr: hdr(instance, dns.TypeSRV, hostTTL, true), Port: uint16(s.port), Target: host}, kind: kindSRV},
		{rr: &dns.TXT{Hdr: hdr(instance, dns.TypeTXT, otherTTL, true), Txt: slices.Clone(s.txt)}, kind: kindTXT},
	}
	for _, a := range addrs[:min(len(addrs), maxLinkAddrs)] {
		if a.Is4() {
			recs = append(recs, ownRecord{rr: &dns.A{Hdr: hdr(host, dns.TypeA, hostTTL, true), A: a.AsSlice()}, kind: kindA})
		} else {
			recs = append(recs, ownRecord{rr: &dns.AAAA{Hdr: hdr(host, dns.TypeAAAA, hostTTL, true), AAAA: a.WithZone("").AsSlice()}, kind: kindAAAA})
		}
	}
	recs = append(recs, ownRecord{rr: &dns.PTR{Hdr: hdr(servicesName, dns.TypePTR, otherTTL, false), Ptr: serviceName}, kind: kindEnum})
	for i := range recs {
		recs[i].key = recordKey(recs[i].rr)
	}
	return recs
}

// canonical returns a domain name in the presentation form miekg/dns
// gives names it unpacks ("Front Door" becomes `Front\ Door`), or name as
// is when it is not a valid name.
func canonical(name string) string {
	buf := make([]byte, 256)
	n, err := dns.PackDomainName(dns.Fqdn(name), buf, 0, nil, false)
	if err != nil {
		return name
	}
	s, _, err := dns.UnpackDomainName(buf[:n], 0)
	if err != nil {
		return name
	}
	return s
}

// recordKey identifies a record by owner (in lower case), type and data,
// whatever its TTL and class.
func recordKey(rr dns.RR) string {
	h := rr.Header()
	return strings.ToLower(h.Name) + "\t" + dns.TypeToString[h.Rrtype] + "\t" + strings.TrimPrefix(rr.String(), h.String())
}

// sameRecord reports whether a record another host sent (a known answer)
// is the same as one of ours, whatever its TTL and cache-flush bit.
func sameRecord(theirs, ours dns.RR) bool {
	a, b := theirs.Header(), ours.Header()
	if a.Rrtype != b.Rrtype || a.Class&^flushBit != b.Class&^flushBit || !strings.EqualFold(a.Name, b.Name) {
		return false
	}
	switch o := ours.(type) {
	case *dns.PTR:
		t, ok := theirs.(*dns.PTR)
		return ok && strings.EqualFold(t.Ptr, o.Ptr)
	case *dns.SRV:
		t, ok := theirs.(*dns.SRV)
		return ok && t.Port == o.Port && t.Priority == o.Priority && t.Weight == o.Weight && strings.EqualFold(t.Target, o.Target)
	case *dns.TXT:
		t, ok := theirs.(*dns.TXT)
		return ok && slices.Equal(t.Txt, o.Txt)
	case *dns.A:
		t, ok := theirs.(*dns.A)
		return ok && t.A.Equal(o.A)
	case *dns.AAAA:
		t, ok := theirs.(*dns.AAAA)
		return ok && t.AAAA.Equal(o.AAAA)
	}
	return false
}

// withTTL returns a copy of rr with another TTL, and without the
// cache-flush bit if noFlush.
func withTTL(rr dns.RR, ttl uint32, noFlush bool) dns.RR {
	c := dns.Copy(rr)
	h := c.Header()
	h.Ttl = ttl
	if noFlush {
		h.Class &^= flushBit
	}
	return c
}
