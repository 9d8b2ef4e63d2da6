package whep

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"

	"github.com/pion/ice/v4"
)

// MaxCandidates is the most remote ICE candidates a session takes: in its
// offer, in one trickle PATCH, and in the offer and every PATCH together.
// The same candidate repeated (in each bundled m-section, or trickled
// again) counts once.
const MaxCandidates = 16

// ErrTooManyCandidates refuses an offer or a PATCH over MaxCandidates (400).
var ErrTooManyCandidates = errors.New("whep: too many ICE candidates")

// scope is how far an address reaches. camd checks only candidates in the
// scope, and of the address family, that the request came from: a client
// on the LAN cannot make camd send STUN to the Internet.
type scope int

const (
	scopeNone      scope = iota // unspecified, multicast, broadcast: never checked
	scopeLoopback               // 127/8, ::1
	scopeLinkLocal              // 169.254/16, fe80::/10
	scopePrivate                // RFC 1918, fc00::/7
	scopeShared                 // 100.64/10 (RFC 6598: carrier-grade NAT, overlay VPNs)
	scopePublic                 // everything else
)

var sharedSpace = netip.MustParsePrefix("100.64.0.0/10")

func scopeOf(a netip.Addr) scope {
	switch {
	case a.IsLoopback():
		return scopeLoopback
	case a.IsLinkLocalUnicast():
		return scopeLinkLocal
	case !a.IsGlobalUnicast():
		return scopeNone
	case a.IsPrivate():
		return scopePrivate
	case sharedSpace.Contains(a):
		return scopeShared
	}
	return scopePublic
}

// candidateFilter decides which of a request's remote candidates camd
// may send connectivity checks to.
type candidateFilter struct {
	from netip.Addr // the request's address; not valid: unknown, nothing passes
	any  bool       // remote access: every address passes
}

// filterFor returns the filter for candidates that r carries.
func (s *Server) filterFor(r *http.Request) candidateFilter {
	ap, _ := netip.ParseAddrPort(r.RemoteAddr)
	return candidateFilter{from: ap.Addr().Unmap(), any: s.opts.RemoteAccess}
}

// allows reports whether camd may check the candidate. Only candidates
// with an IP address pass: camd's engine does not resolve mDNS (".local")
// names, which pion would ignore anyway.
func (f candidateFilter) allows(c ice.Candidate) bool {
	a, err := netip.ParseAddr(c.Address())
	if err != nil {
		return false
	}
	a = a.Unmap()
	if scopeOf(a) == scopeNone {
		return false
	}
	if f.any {
		return true
	}
	return f.from.IsValid() && a.Is4() == f.from.Is4() && scopeOf(a) == scopeOf(f.from)
}

// candidateLine is one "a=candidate:" line: its value without "a=".
func candidateLine(line string) (string, bool) {
	v, ok := strings.CutPrefix(strings.TrimSpace(line), "a=candidate:")
	if !ok {
		return "", false
	}
	return "candidate:" + v, true
}

// check parses a candidate and says whether it passes. Candidates that
// pion would discard too (an unknown type or network) are dropped; any
// other that does not parse is an error.
func (f candidateFilter) check(value string) (bool, error) {
	c, err := ice.UnmarshalCandidate(value)
	if err != nil {
		if errors.Is(err, ice.ErrUnknownCandidateTyp) || errors.Is(err, ice.ErrDetermineNetworkType) {
			return false, nil
		}
		return false, fmt.Errorf("whep: bad candidate %q: %v", truncate(value, 60), err)
	}
	return f.allows(c), nil
}

// filterOffer removes from an SDP offer the candidates that f does not
// allow. It returns the offer pion gets, the distinct candidates the
// offer carried and how many lines it dropped.
func (f candidateFilter) filterOffer(offer string) (out string, seen map[string]bool, dropped int, err error) {
	seen = make(map[string]bool)
	for line := range strings.Lines(offer) {
		if v, ok := candidateLine(line); ok {
			seen[v] = true
		}
	}
	if len(seen) > MaxCandidates {
		return "", nil, 0, fmt.Errorf("%w: the offer carries %d; camd takes at most %d", ErrTooManyCandidates, len(seen), MaxCandidates)
	}
	var b strings.Builder
	b.Grow(len(offer))
	for line := range strings.Lines(offer) {
		if v, ok := candidateLine(line); ok {
			pass, err := f.check(v)
			if err != nil {
				return "", nil, 0, err
			}
			if !pass {
				dropped++
				continue
			}
		}
		b.WriteString(line)
	}
	return b.String(), seen, dropped, nil
}
