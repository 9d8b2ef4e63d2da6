package wsd

import (
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
)

// Namespaces of the WS-Discovery dialect ONVIF uses.
const (
	NSSOAP       = "http://www.w3.org/2003/05/soap-envelope"
	NSAddressing = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
	NSDiscovery  = "http://schemas.xmlsoap.org/ws/2005/04/discovery"
	// NSNetwork holds ONVIF's NetworkVideoTransmitter type.
	NSNetwork = "http://www.onvif.org/ver10/network/wsdl"
	// NSDevice holds ONVIF's Device type.
	NSDevice = "http://www.onvif.org/ver10/device/wsdl"
)

// Actions, addresses and matching rules from the WS-Discovery 2005/04 spec.
const (
	ActionProbe        = NSDiscovery + "/Probe"
	ActionProbeMatches = NSDiscovery + "/ProbeMatches"
	ActionHello        = NSDiscovery + "/Hello"
	ActionBye          = NSDiscovery + "/Bye"

	// ToDiscovery is the To of every multicast message.
	ToDiscovery = "urn:schemas-xmlsoap-org:ws:2005:04:discovery"
	// ToAnonymous is the To of a reply.
	ToAnonymous = NSAddressing + "/role/anonymous"

	MatchRFC3986 = NSDiscovery + "/rfc3986"
	MatchStrcmp0 = NSDiscovery + "/strcmp0"
)

// NetworkVideoTransmitter is the type ONVIF clients probe for.
var NetworkVideoTransmitter = xml.Name{Space: NSNetwork, Local: "NetworkVideoTransmitter"}

// MaxMessage is the largest datagram that is parsed; larger ones are
// dropped unread.
const MaxMessage = 16 << 10

// Parse errors.
var (
	ErrTooLarge  = errors.New("wsd: message too large")
	ErrMalformed = errors.New("wsd: malformed message")
)

// Match is one device found by a probe: a ProbeMatch, or a Hello.
type Match struct {
	// Endpoint is the device's stable address, usually urn:uuid:….
	Endpoint string     `json:"endpoint"`
	Types    []xml.Name `json:"-"`
	// TypeNames are Types as "namespace#local" strings.
	TypeNames       []string `json:"types"`
	Scopes          []string `json:"scopes,omitempty"`
	XAddrs          []string `json:"xaddrs,omitempty"`
	MetadataVersion uint32   `json:"metadata_version"`
}

// Scope is the rest of the first scope that starts with prefix, path
// unescaped ("onvif://www.onvif.org/name/" gives the device's name), or
// "" when no scope does.
func (m Match) Scope(prefix string) string {
	for _, s := range m.Scopes {
		if v, ok := strings.CutPrefix(s, prefix); ok {
			if u, err := url.PathUnescape(v); err == nil {
				v = u
			}
			return v
		}
	}
	return ""
}

// ONVIF scope prefixes of a device's name and hardware (model).
const (
	ScopeName     = "onvif://www.onvif.org/name/"
	ScopeHardware = "onvif://www.onvif.org/hardware/"
)

// Message is what the responder and the client need of a WS-Discovery
// message.
type Message struct {
	Action    string
	MessageID string
	RelatesTo string
	// Probe: the types and scopes asked for, and how scopes match.
	Types   []xml.Name
	Scopes  []string
	MatchBy string
	// ProbeMatches, Hello, Bye: the devices.
	Matches []Match
}

// limits on what one message may carry; a message beyond them is malformed.
const (
	maxDepth  = 32
	maxList   = 64
	maxTokens = 4096
)

// Parse reads a SOAP 1.2 envelope carrying WS-Discovery 2005/04. Elements
// it does not know are skipped; a message that is not well-formed XML, is
// nested too deeply or lists too much is refused.
func Parse(b []byte) (*Message, error) {
	if len(b) > MaxMessage {
		return nil, ErrTooLarge
	}
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict = true
	d.CharsetReader = func(charset string, r io.Reader) (io.Reader, error) {
		if strings.EqualFold(charset, "utf-8") || strings.EqualFold(charset, "us-ascii") {
			return r, nil
		}
		return nil, fmt.Errorf("charset %q", charset)
	}
	var (
		m      Message
		path   []xml.Name
		scopes []map[string]string // in-scope prefix → namespace
		text   strings.Builder
		cur    *Match
		tokens int
	)
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		if tokens++; tokens > maxTokens {
			return nil, fmt.Errorf("%w: too many elements", ErrMalformed)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if len(path) >= maxDepth {
				return nil, fmt.Errorf("%w: nested too deeply", ErrMalformed)
			}
			ns := map[string]string{}
			for _, a := range t.Attr {
				switch {
				case a.Name.Space == "xmlns":
					ns[a.Name.Local] = a.Value
				case a.Name.Space == "" && a.Name.Local == "xmlns":
					ns[""] = a.Value
				}
			}
			path = append(path, t.Name)
			scopes = append(scopes, ns)
			text.Reset()
			if len(path) == 1 && t.Name != (xml.Name{Space: NSSOAP, Local: "Envelope"}) {
				return nil, fmt.Errorf("%w: not a SOAP 1.2 envelope", ErrMalformed)
			}
			switch {
			case t.Name.Space == NSDiscovery && t.Name.Local == "Scopes":
				for _, a := range t.Attr {
					if a.Name.Local == "MatchBy" {
						m.MatchBy = a.Value
					}
				}
			case t.Name.Space == NSDiscovery && (t.Name.Local == "ProbeMatch" || t.Name.Local == "Hello" || t.Name.Local == "Bye"):
				if len(m.Matches) >= maxList {
					return nil, fmt.Errorf("%w: too many matches", ErrMalformed)
				}
				m.Matches = append(m.Matches, Match{})
				cur = &m.Matches[len(m.Matches)-1]
			}
		case xml.CharData:
			if text.Len()+len(t) > MaxMessage {
				return nil, ErrTooLarge
			}
			text.Write(t)
		case xml.EndElement:
			if len(path) == 0 {
				return nil, fmt.Errorf("%w: unbalanced", ErrMalformed)
			}
			v := strings.TrimSpace(text.String())
			text.Reset()
			if err := m.set(path, scopes, cur, v); err != nil {
				return nil, err
			}
			path = path[:len(path)-1]
			scopes = scopes[:len(scopes)-1]
		}
	}
	if m.Action == "" {
		return nil, fmt.Errorf("%w: no Action", ErrMalformed)
	}
	return &m, nil
}

// set stores the text of the element that ends at the tip of path.
func (m *Message) set(path []xml.Name, scopes []map[string]string, cur *Match, v string) error {
	el := path[len(path)-1]
	var parent xml.Name
	if len(path) > 1 {
		parent = path[len(path)-2]
	}
	inHeader := len(path) == 3 && path[1] == xml.Name{Space: NSSOAP, Local: "Header"}
	switch {
	case inHeader && el.Space == NSAddressing && el.Local == "Action":
		m.Action = v
	case inHeader && el.Space == NSAddressing && el.Local == "MessageID":
		m.MessageID = v
	case inHeader && el.Space == NSAddressing && el.Local == "RelatesTo":
		m.RelatesTo = v
	case el.Space != NSDiscovery && el.Space != NSAddressing:
	case parent.Local == "Probe" && el.Local == "Types":
		types, err := qnames(v, scopes)
		if err != nil {
			return err
		}
		m.Types = types
	case parent.Local == "Probe" && el.Local == "Scopes":
		f, err := list(v)
		if err != nil {
			return err
		}
		m.Scopes = f
	case cur == nil:
	case el.Local == "Address" && parent.Local == "EndpointReference":
		cur.Endpoint = v
	case el.Local == "Types":
		types, err := qnames(v, scopes)
		if err != nil {
			return err
		}
		cur.Types = types
		for _, t := range types {
			cur.TypeNames = append(cur.TypeNames, t.Space+"#"+t.Local)
		}
	case el.Local == "Scopes":
		f, err := list(v)
		if err != nil {
			return err
		}
		cur.Scopes = f
	case el.Local == "XAddrs":
		f, err := list(v)
		if err != nil {
			return err
		}
		cur.XAddrs = f
	case el.Local == "MetadataVersion":
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return fmt.Errorf("%w: MetadataVersion %q", ErrMalformed, v)
		}
		cur.MetadataVersion = uint32(n)
	}
	return nil
}

func list(v string) ([]string, error) {
	f := strings.Fields(v)
	if len(f) > maxList {
		return nil, fmt.Errorf("%w: list of %d items", ErrMalformed, len(f))
	}
	return f, nil
}

// qnames resolves a list of prefixed names with the namespaces in scope.
func qnames(v string, scopes []map[string]string) ([]xml.Name, error) {
	f, err := list(v)
	if err != nil {
		return nil, err
	}
	var out []xml.Name
	for _, q := range f {
		prefix, local, ok := strings.Cut(q, ":")
		if !ok {
			prefix, local = "", q
		}
		ns, found := "", false
		for i := len(scopes) - 1; i >= 0 && !found; i-- {
			ns, found = scopes[i][prefix]
		}
		if !found && prefix != "" {
			return nil, fmt.Errorf("%w: undeclared prefix in %q", ErrMalformed, q)
		}
		out = append(out, xml.Name{Space: ns, Local: local})
	}
	return out, nil
}

// NewMessageID returns a random urn:uuid.
func NewMessageID() string {
	var b [16]byte
	rand.Read(b[:])
	return "urn:uuid:" + formatUUID(b, 4)
}

// EndpointFor derives a stable endpoint address from a device ID (camd's
// random ID, never a MAC): a name-based UUID (version 5 layout).
func EndpointFor(deviceID string) string {
	sum := sha1.Sum([]byte("camd wsd endpoint\x00" + deviceID))
	var b [16]byte
	copy(b[:], sum[:16])
	return "urn:uuid:" + formatUUID(b, 5)
}

func formatUUID(b [16]byte, version byte) string {
	b[6] = b[6]&0x0f | version<<4
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// esc escapes text for an XML element or attribute.
func esc(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

// envelopeOpen starts what a responder sends; without an XML
// declaration (optional for UTF-8) to keep replies small.
const envelopeOpen = `<s:Envelope xmlns:s="` + NSSOAP + `" xmlns:a="` + NSAddressing + `" xmlns:d="` + NSDiscovery +
	`" xmlns:dn="` + NSNetwork + `" xmlns:tds="` + NSDevice + `">`

// Target is what a responder says about its device.
type Target struct {
	Endpoint        string
	Types           []xml.Name // of NSNetwork or NSDevice
	Scopes          []string
	XAddrs          []string
	MetadataVersion uint32
}

func (t Target) typeList() string {
	var f []string
	for _, n := range t.Types {
		switch n.Space {
		case NSNetwork:
			f = append(f, "dn:"+n.Local)
		case NSDevice:
			f = append(f, "tds:"+n.Local)
		}
	}
	return strings.Join(f, " ")
}

// body writes the parts of a target shared by ProbeMatch and Hello.
func (t Target) body(b *strings.Builder, withScopes, withXAddrs bool) {
	b.WriteString(`<a:EndpointReference><a:Address>` + esc(t.Endpoint) + `</a:Address></a:EndpointReference>`)
	if tl := t.typeList(); tl != "" {
		b.WriteString(`<d:Types>` + tl + `</d:Types>`)
	}
	if withScopes && len(t.Scopes) > 0 {
		b.WriteString(`<d:Scopes>` + esc(strings.Join(t.Scopes, " ")) + `</d:Scopes>`)
	}
	if withXAddrs && len(t.XAddrs) > 0 {
		b.WriteString(`<d:XAddrs>` + esc(strings.Join(t.XAddrs, " ")) + `</d:XAddrs>`)
	}
	b.WriteString(`<d:MetadataVersion>` + strconv.FormatUint(uint64(t.MetadataVersion), 10) + `</d:MetadataVersion>`)
}

// Sequence is the AppSequence header: InstanceId grows each time the
// responder starts, MessageNumber with each message it sends.
type Sequence struct {
	InstanceID    uint32
	MessageNumber uint32
}

func header(action, to, relatesTo string, seq Sequence) string {
	h := `<s:Header><a:MessageID>` + NewMessageID() + `</a:MessageID>`
	if relatesTo != "" {
		h += `<a:RelatesTo>` + esc(relatesTo) + `</a:RelatesTo>`
	}
	h += `<a:To>` + to + `</a:To><a:Action>` + action + `</a:Action>`
	h += fmt.Sprintf(`<d:AppSequence InstanceId="%d" MessageNumber="%d"/>`, seq.InstanceID, seq.MessageNumber)
	return h + `</s:Header>`
}

// ProbeMatches builds the reply to the probe whose MessageID is relatesTo.
// Scopes are left out when withScopes is false (to keep a reply small).
func ProbeMatches(t Target, relatesTo string, seq Sequence, withScopes bool) []byte {
	var b strings.Builder
	b.WriteString(envelopeOpen)
	b.WriteString(header(ActionProbeMatches, ToAnonymous, relatesTo, seq))
	b.WriteString(`<s:Body><d:ProbeMatches><d:ProbeMatch>`)
	t.body(&b, withScopes, true)
	b.WriteString(`</d:ProbeMatch></d:ProbeMatches></s:Body></s:Envelope>`)
	return []byte(b.String())
}

// Hello announces the target joining the network.
func Hello(t Target, seq Sequence) []byte {
	var b strings.Builder
	b.WriteString(envelopeOpen)
	b.WriteString(header(ActionHello, ToDiscovery, "", seq))
	b.WriteString(`<s:Body><d:Hello>`)
	t.body(&b, true, true)
	b.WriteString(`</d:Hello></s:Body></s:Envelope>`)
	return []byte(b.String())
}

// Bye announces the target leaving the network.
func Bye(t Target, seq Sequence) []byte {
	var b strings.Builder
	b.WriteString(envelopeOpen)
	b.WriteString(header(ActionBye, ToDiscovery, "", seq))
	b.WriteString(`<s:Body><d:Bye><a:EndpointReference><a:Address>` + esc(t.Endpoint) +
		`</a:Address></a:EndpointReference></d:Bye></s:Body></s:Envelope>`)
	return []byte(b.String())
}

// ProbeMessage builds a Probe for the given types (none: every device)
// and returns it with its MessageID.
func ProbeMessage(types ...xml.Name) ([]byte, string) {
	id := NewMessageID()
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>`)
	b.WriteString(`<s:Envelope xmlns:s="` + NSSOAP + `" xmlns:a="` + NSAddressing + `" xmlns:d="` + NSDiscovery + `">`)
	b.WriteString(`<s:Header><a:Action>` + ActionProbe + `</a:Action><a:MessageID>` + id +
		`</a:MessageID><a:To>` + ToDiscovery + `</a:To></s:Header><s:Body><d:Probe>`)
	if len(types) > 0 {
		b.WriteString(`<d:Types>`)
		for i, t := range types {
			if i > 0 {
				b.WriteString(" ")
			}
			fmt.Fprintf(&b, `t%d:%s`, i, t.Local)
		}
		b.WriteString(`</d:Types>`)
	}
	b.WriteString(`</d:Probe></s:Body></s:Envelope>`)
	out := b.String()
	if len(types) > 0 {
		// declare each type's prefix on Types
		var decl strings.Builder
		for i, t := range types {
			fmt.Fprintf(&decl, ` xmlns:t%d="%s"`, i, esc(t.Space))
		}
		out = strings.Replace(out, `<d:Types>`, `<d:Types`+decl.String()+`>`, 1)
	}
	return []byte(out), id
}

// MatchesTarget reports whether a target serving types and scopes answers a
// probe asking for m.Types and m.Scopes (WS-Discovery 2005/04 §5.1).
func (m *Message) MatchesTarget(types []xml.Name, scopes []string) bool {
	for _, want := range m.Types {
		found := false
		for _, have := range types {
			if want == have {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	for _, want := range m.Scopes {
		found := false
		for _, have := range scopes {
			if scopeMatch(m.MatchBy, want, have) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// scopeMatch applies a MatchBy rule; an unknown rule matches nothing.
func scopeMatch(rule, want, have string) bool {
	switch rule {
	case "", MatchRFC3986:
		// segment-wise prefix: onvif://www.onvif.org/name matches
		// onvif://www.onvif.org/name/Front%20Door but not …/names.
		want = strings.TrimSuffix(want, "/")
		return have == want || strings.HasPrefix(have, want+"/")
	case MatchStrcmp0:
		return have == want
	}
	return false
}
