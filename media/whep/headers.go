package whep

import (
	"strings"

	"github.com/pion/webrtc/v4"
)

// iceServerLinks formats ICE servers as Link header values
// (draft-ietf-wish-whep, as RFC 9725 section 4.6): one per URL, with the
// TURN credentials as link parameters.
func iceServerLinks(servers []webrtc.ICEServer) []string {
	var links []string
	for _, srv := range servers {
		var params string
		if srv.Username != "" {
			params = "; username=" + quote(srv.Username)
		}
		if cred, ok := srv.Credential.(string); ok && cred != "" {
			params += "; credential=" + quote(cred) + `; credential-type="password"`
		}
		for _, u := range srv.URLs {
			links = append(links, "<"+u+`>; rel="ice-server"`+params)
		}
	}
	return links
}

// quote makes an HTTP quoted-string.
func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// ifMatch evaluates If-Match header values against a strong entity tag
// (RFC 9110 section 13.1.1): no header, "*", or a list naming the tag.
func ifMatch(values []string, etag string) bool {
	if len(values) == 0 {
		return true
	}
	for _, v := range values {
		for _, t := range strings.Split(v, ",") {
			if t = strings.TrimSpace(t); t == "*" || t == etag {
				return true
			}
		}
	}
	return false
}

// maxICEServerLinks bounds the ICE servers taken from one answer's Link
// headers.
const maxICEServerLinks = 8

// parseICEServerLinks reads the ICE servers of Link header values
// (RFC 8288; rel="ice-server" as RFC 9725 section 4.6 uses it): the URL
// in angle brackets, with TURN credentials as the username and credential
// parameters. Links of other relations, with URLs that are not stun:,
// stuns:, turn: or turns:, or that cannot be read are skipped; at most
// maxICEServerLinks are kept.
func parseICEServerLinks(values []string) []webrtc.ICEServer {
	var out []webrtc.ICEServer
	for _, v := range values {
		for len(v) > 0 && len(out) < maxICEServerLinks {
			var l link
			var ok bool
			l, v, ok = nextLink(v)
			if !ok {
				break
			}
			if !strings.EqualFold(l.params["rel"], "ice-server") || !iceURL(l.url) {
				continue
			}
			srv := webrtc.ICEServer{URLs: []string{l.url}, Username: l.params["username"]}
			if c := l.params["credential"]; c != "" {
				srv.Credential = c
				srv.CredentialType = webrtc.ICECredentialTypePassword
			}
			out = append(out, srv)
		}
	}
	return out
}

// iceURL reports whether u names a STUN or TURN server.
func iceURL(u string) bool {
	scheme, rest, ok := strings.Cut(u, ":")
	if !ok || rest == "" || strings.ContainsAny(u, " \t\r\n") {
		return false
	}
	switch strings.ToLower(scheme) {
	case "stun", "stuns", "turn", "turns":
		return true
	}
	return false
}

// link is one link-value of a Link header.
type link struct {
	url    string
	params map[string]string // names lower-cased; quoted values unquoted
}

// nextLink reads the first link-value of s and returns it with the rest
// of s after its comma. It fails on a value that is not "<URL>" followed
// by parameters.
func nextLink(s string) (link, string, bool) {
	s = strings.TrimLeft(s, " \t,")
	if !strings.HasPrefix(s, "<") {
		return link{}, "", false
	}
	end := strings.IndexByte(s, '>')
	if end < 0 {
		return link{}, "", false
	}
	l := link{url: s[1:end], params: map[string]string{}}
	s = s[end+1:]
	for {
		s = strings.TrimLeft(s, " \t")
		if s == "" {
			return l, "", true
		}
		if s[0] == ',' {
			return l, s[1:], true
		}
		if s[0] != ';' {
			return link{}, "", false
		}
		s = strings.TrimLeft(s[1:], " \t")
		i := strings.IndexAny(s, "=;,")
		if i < 0 {
			i = len(s)
		}
		name := strings.ToLower(strings.TrimSpace(s[:i]))
		s = s[i:]
		value := ""
		if strings.HasPrefix(s, "=") {
			var ok bool
			value, s, ok = paramValue(strings.TrimLeft(s[1:], " \t"))
			if !ok {
				return link{}, "", false
			}
		}
		if _, seen := l.params[name]; !seen && name != "" {
			l.params[name] = value // the first of a parameter given twice counts (RFC 8288 section 3)
		}
	}
}

// paramValue reads a token or a quoted-string at the start of s.
func paramValue(s string) (value, rest string, ok bool) {
	if !strings.HasPrefix(s, `"`) {
		i := strings.IndexAny(s, ";, \t")
		if i < 0 {
			i = len(s)
		}
		return s[:i], s[i:], true
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			if i+1 >= len(s) {
				return "", "", false
			}
			i++
			b.WriteByte(s[i])
		case '"':
			return b.String(), s[i+1:], true
		default:
			b.WriteByte(c)
		}
	}
	return "", "", false
}
