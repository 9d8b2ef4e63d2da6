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
