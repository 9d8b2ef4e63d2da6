package onvif

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// XML namespaces of the messages camd reads and writes.
const (
	nsSOAP   = "http://www.w3.org/2003/05/soap-envelope"
	nsSOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
	nsDevice = "http://www.onvif.org/ver10/device/wsdl"
	nsMedia  = "http://www.onvif.org/ver10/media/wsdl"
	nsEvents = "http://www.onvif.org/ver10/events/wsdl"
	nsSchema = "http://www.onvif.org/ver10/schema"
	nsError  = "http://www.onvif.org/ver10/error"
	nsTopics = "http://www.onvif.org/ver10/topics"
	nsWSNT   = "http://docs.oasis-open.org/wsn/b-2"
	nsWSA    = "http://www.w3.org/2005/08/addressing"
	nsWSSE   = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
	nsWSU    = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"

	passwordDigest = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest"
	topicDialect   = "http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet"
)

// Bounds of a request's XML, beyond the body size: a deeper or larger
// tree is refused before any of it is used.
const (
	maxDepth    = 32
	maxElements = 2048
	maxAttrs    = 16
)

// node is one element of a parsed request: its name, attributes, text
// and children. A request's tree is small (its body is bounded), and
// handlers read the few values they need by local name.
type node struct {
	Name     xml.Name
	Attrs    []xml.Attr
	Text     string
	Children []*node
}

// child is the first child named local (any namespace), or nil.
func (n *node) child(local string) *node {
	if n == nil {
		return nil
	}
	for _, c := range n.Children {
		if c.Name.Local == local {
			return c
		}
	}
	return nil
}

// path follows children by local name; nil when one is missing.
func (n *node) path(locals ...string) *node {
	for _, l := range locals {
		n = n.child(l)
	}
	return n
}

// text is the trimmed text of the element at path, "" when missing.
func (n *node) text(locals ...string) string {
	if c := n.path(locals...); c != nil {
		return strings.TrimSpace(c.Text)
	}
	return ""
}

// attr is the value of the attribute named local, "" when missing.
func (n *node) attr(local string) string {
	if n == nil {
		return ""
	}
	for _, a := range n.Attrs {
		if a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}

// request is a parsed SOAP envelope: the WS-Security header's
// UsernameToken (nil without one) and the body's one element, the
// action.
type request struct {
	Token  *node
	Action *node
}

// Sentinel errors of parsing; each becomes a SOAP fault.
var (
	// ErrMalformed: the body is not a SOAP 1.2 envelope with one action.
	ErrMalformed = errors.New("onvif: malformed request")
	// ErrVersion: a SOAP 1.1 (or other) envelope.
	ErrVersion = errors.New("onvif: not a SOAP 1.2 envelope")
)

// parse reads a SOAP 1.2 envelope from r (bounded by the caller) as a
// tree of at most maxElements elements, maxDepth deep.
func parse(r io.Reader) (request, error) {
	d := xml.NewDecoder(r)
	d.Strict = true
	var root *node
	var stack []*node
	count := 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return request{}, fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if count++; count > maxElements || len(stack) >= maxDepth || len(t.Attr) > maxAttrs {
				return request{}, fmt.Errorf("%w: too large or too deep", ErrMalformed)
			}
			n := &node{Name: t.Name, Attrs: t.Attr}
			if len(stack) == 0 {
				if root != nil {
					return request{}, fmt.Errorf("%w: more than one root element", ErrMalformed)
				}
				root = n
			} else {
				p := stack[len(stack)-1]
				p.Children = append(p.Children, n)
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].Text += string(t)
			} else if len(bytes.TrimSpace(t)) > 0 {
				return request{}, fmt.Errorf("%w: text outside the envelope", ErrMalformed)
			}
		case xml.Directive:
			// A DOCTYPE could declare entities: SOAP forbids it.
			return request{}, fmt.Errorf("%w: a DTD", ErrMalformed)
		}
	}
	if root == nil || root.Name.Local != "Envelope" {
		return request{}, fmt.Errorf("%w: no Envelope", ErrMalformed)
	}
	if root.Name.Space != nsSOAP {
		return request{}, ErrVersion
	}
	var req request
	body := 0
	for _, c := range root.Children {
		switch {
		case c.Name == xml.Name{Space: nsSOAP, Local: "Header"}:
			for _, h := range c.Children {
				if h.Name == (xml.Name{Space: nsWSSE, Local: "Security"}) {
					req.Token = h.child("UsernameToken")
				}
			}
		case c.Name == xml.Name{Space: nsSOAP, Local: "Body"}:
			body++
			if len(c.Children) != 1 {
				return request{}, fmt.Errorf("%w: the Body holds %d elements, not one", ErrMalformed, len(c.Children))
			}
			req.Action = c.Children[0]
		}
	}
	if body != 1 {
		return request{}, fmt.Errorf("%w: no Body", ErrMalformed)
	}
	return req, nil
}

// writer builds an answer: a SOAP 1.2 envelope that declares the
// prefixes cameras use (tds, trt, tev, tt, wsnt, wsa, tns1, ter), so that
// clients that match prefixes rather than namespaces read it too.
type writer struct{ b bytes.Buffer }

const envelopeOpen = `<?xml version="1.0" encoding="UTF-8"?>` +
	`<env:Envelope xmlns:env="` + nsSOAP + `" xmlns:tds="` + nsDevice + `" xmlns:trt="` + nsMedia +
	`" xmlns:tev="` + nsEvents + `" xmlns:tt="` + nsSchema + `" xmlns:wsnt="` + nsWSNT +
	`" xmlns:wsa="` + nsWSA + `" xmlns:tns1="` + nsTopics + `" xmlns:ter="` + nsError + `">`

func newWriter() *writer {
	w := &writer{}
	w.b.WriteString(envelopeOpen)
	w.b.WriteString("<env:Body>")
	return w
}

// open starts element tag with attributes given as name, value pairs.
func (w *writer) open(tag string, attrs ...string) *writer {
	w.b.WriteByte('<')
	w.b.WriteString(tag)
	for i := 0; i+1 < len(attrs); i += 2 {
		w.b.WriteString(" " + attrs[i] + `="`)
		xml.EscapeText(&w.b, []byte(attrs[i+1]))
		w.b.WriteByte('"')
	}
	w.b.WriteByte('>')
	return w
}

func (w *writer) close(tag string) *writer {
	w.b.WriteString("</" + tag + ">")
	return w
}

// elem writes <tag>text</tag>, the text escaped.
func (w *writer) elem(tag string, text string) *writer {
	w.b.WriteString("<" + tag + ">")
	xml.EscapeText(&w.b, []byte(text))
	return w.close(tag)
}

// empty writes <tag attrs.../>.
func (w *writer) empty(tag string, attrs ...string) *writer {
	w.open(tag, attrs...)
	w.b.Truncate(w.b.Len() - 1)
	w.b.WriteString("/>")
	return w
}

// bytes ends the envelope.
func (w *writer) bytes() []byte {
	w.b.WriteString("</env:Body></env:Envelope>")
	return w.b.Bytes()
}

// fault is a SOAP fault: code env:Sender (the client's mistake, HTTP
// 400) or env:Receiver (500), ONVIF's subcodes (ter:NotAuthorized,
// ter:ActionNotSupported, ...), and a reason for people.
type fault struct {
	Sender  bool
	Subcode []string // outermost first, "ter:InvalidArgVal", "ter:NoProfile"
	Reason  string
}

func (f *fault) Error() string { return "onvif: " + f.Reason }

func (f *fault) status() int {
	if f.Sender {
		return 400
	}
	return 500
}

func (f *fault) envelope() []byte {
	w := newWriter()
	code := "env:Receiver"
	if f.Sender {
		code = "env:Sender"
	}
	w.open("env:Fault").open("env:Code").elem("env:Value", code)
	for _, s := range f.Subcode {
		w.open("env:Subcode").elem("env:Value", s)
	}
	for range f.Subcode {
		w.close("env:Subcode")
	}
	w.close("env:Code")
	w.open("env:Reason").open("env:Text", "xml:lang", "en").b.WriteString("")
	xml.EscapeText(&w.b, []byte(f.Reason))
	w.close("env:Text").close("env:Reason").close("env:Fault")
	return w.bytes()
}

// Faults camd answers.
func notAuthorized(reason string) *fault {
	return &fault{Sender: true, Subcode: []string{"ter:NotAuthorized"}, Reason: reason}
}

func invalidArg(sub, reason string) *fault {
	return &fault{Sender: true, Subcode: []string{"ter:InvalidArgVal", sub}, Reason: reason}
}

func actionNotSupported(reason string) *fault {
	return &fault{Subcode: []string{"ter:ActionNotSupported"}, Reason: reason}
}

// elem2 writes <tag attrs...>text</tag>.
func (w *writer) elem2(tag, text string, attrs ...string) *writer {
	w.open(tag, attrs...)
	xml.EscapeText(&w.b, []byte(text))
	return w.close(tag)
}
