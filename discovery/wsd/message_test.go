package wsd

import (
	"encoding/xml"
	"errors"
	"strings"
	"testing"
)

// specProbe is the ONVIF Core Specification's example Probe (section 7.3),
// with the mustUnderstand prefixes corrected to the envelope's.
const specProbe = `<?xml version="1.0" encoding="UTF-8"?>
<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"
xmlns:w="http://schemas.xmlsoap.org/ws/2004/08/addressing"
xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery"
xmlns:dn="http://www.onvif.org/ver10/network/wsdl">
<e:Header>
<w:MessageID>uuid:84ede3de-7dec-11d0-c360-f01234567890</w:MessageID>
<w:To e:mustUnderstand="true">urn:schemas-xmlsoap-org:ws:2005:04:discovery</w:To>
<w:Action e:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe</w:Action>
</e:Header>
<e:Body>
<d:Probe>
<d:Types>dn:NetworkVideoTransmitter</d:Types>
</d:Probe>
</e:Body>
</e:Envelope>`

var deviceType = xml.Name{Space: NSDevice, Local: "Device"}

func TestParseSpecProbe(t *testing.T) {
	m, err := Parse([]byte(specProbe))
	if err != nil {
		t.Fatal(err)
	}
	if m.Action != ActionProbe || m.MessageID != "uuid:84ede3de-7dec-11d0-c360-f01234567890" ||
		len(m.Types) != 1 || m.Types[0] != NetworkVideoTransmitter {
		t.Fatalf("%+v", m)
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, xml string
		err       error
		check     func(*Message) bool
	}{
		{"default namespace on Types", strings.Replace(specProbe, "<d:Types>dn:NetworkVideoTransmitter</d:Types>",
			`<d:Types xmlns="http://www.onvif.org/ver10/device/wsdl">Device</d:Types>`, 1), nil,
			func(m *Message) bool { return len(m.Types) == 1 && m.Types[0] == deviceType }},
		{"scopes and MatchBy", strings.Replace(specProbe, "</d:Probe>",
			`<d:Scopes MatchBy="`+MatchStrcmp0+`"> onvif://www.onvif.org/name/x
			onvif://www.onvif.org/type/video_encoder </d:Scopes></d:Probe>`, 1), nil,
			func(m *Message) bool { return len(m.Scopes) == 2 && m.MatchBy == MatchStrcmp0 }},
		{"undeclared prefix", strings.Replace(specProbe, "dn:NetworkVideoTransmitter", "zz:NetworkVideoTransmitter", 1), ErrMalformed, nil},
		{"SOAP 1.1 envelope", strings.Replace(specProbe, "http://www.w3.org/2003/05/soap-envelope", "http://schemas.xmlsoap.org/soap/envelope/", 1), ErrMalformed, nil},
		{"not XML", "hello", ErrMalformed, nil},
		{"truncated", specProbe[:300], ErrMalformed, nil},
		{"no action", strings.Replace(specProbe, "Action", "Other", 2), ErrMalformed, nil},
		{"too large", specProbe + strings.Repeat(" ", MaxMessage), ErrTooLarge, nil},
		{"nested too deeply", strings.Replace(specProbe, "<d:Probe>", strings.Repeat("<x>", 40)+"<d:Probe>", 1), ErrMalformed, nil},
		{"too many types", strings.Replace(specProbe, "dn:NetworkVideoTransmitter", strings.Repeat("dn:A ", 100), 1), ErrMalformed, nil},
		{"entity", strings.Replace(specProbe, "<e:Header>", "<e:Header>&xxe;", 1), ErrMalformed, nil},
		{"doctype", strings.Replace(specProbe, "<e:Envelope", `<!DOCTYPE e [<!ENTITY a "aaaaaaaaaa">]><e:Envelope`, 1), nil,
			func(m *Message) bool { return m.Action == ActionProbe }},
		{"latin-1", strings.Replace(specProbe, "UTF-8", "ISO-8859-1", 1), ErrMalformed, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Parse([]byte(tc.xml))
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil || !tc.check(m) {
				t.Fatalf("%+v, %v", m, err)
			}
		})
	}
}

func TestMessagesParseBack(t *testing.T) {
	target := Target{
		Endpoint: EndpointFor("ABCDEFGHIJKLMNOP"),
		Types:    []xml.Name{NetworkVideoTransmitter, deviceType},
		Scopes:   []string{"onvif://www.onvif.org/name/A%26B%3C"},
		XAddrs:   []string{"https://10.0.0.1:8443/", "https://[fd00::1]:8443/"}, MetadataVersion: 7,
	}
	for name, b := range map[string][]byte{
		"ProbeMatches": ProbeMatches(target, "urn:uuid:x&<", Sequence{1, 2}, true),
		"Hello":        Hello(target, Sequence{1, 3}),
	} {
		m, err := Parse(b)
		if err != nil || len(m.Matches) != 1 {
			t.Fatalf("%s: %v\n%s", name, err, b)
		}
		got := m.Matches[0]
		if got.Endpoint != target.Endpoint || len(got.Types) != 2 || got.Types[1] != deviceType ||
			got.Scopes[0] != target.Scopes[0] || len(got.XAddrs) != 2 || got.MetadataVersion != 7 {
			t.Errorf("%s: %+v", name, got)
		}
		if name == "ProbeMatches" && (m.RelatesTo != "urn:uuid:x&<" || m.Action != ActionProbeMatches) {
			t.Errorf("ProbeMatches: %+v", m)
		}
	}
	m, err := Parse(Bye(target, Sequence{1, 4}))
	if err != nil || m.Action != ActionBye || m.Matches[0].Endpoint != target.Endpoint {
		t.Fatalf("Bye: %+v %v", m, err)
	}
	p, id := ProbeMessage(NetworkVideoTransmitter, deviceType)
	m, err = Parse(p)
	if err != nil || m.MessageID != id || len(m.Types) != 2 || m.Types[1] != deviceType {
		t.Fatalf("Probe: %+v %v\n%s", m, err, p)
	}
}

func TestEndpointIsStableAndHidesTheID(t *testing.T) {
	a, b := EndpointFor("ABCDEFGHIJKLMNOP"), EndpointFor("ABCDEFGHIJKLMNOP")
	if a != b || a == EndpointFor("ABCDEFGHIJKLMNOQ") || !strings.HasPrefix(a, "urn:uuid:") || len(a) != 45 || a[23] != '5' {
		t.Fatalf("endpoint %q", a)
	}
}

func TestMatchesTarget(t *testing.T) {
	types := []xml.Name{NetworkVideoTransmitter, deviceType}
	scopes := []string{"onvif://www.onvif.org/name/Front%20Door", "onvif://www.onvif.org/type/video_encoder"}
	printer := xml.Name{Space: "http://schemas.microsoft.com/windows/2006/08/wdp/print", Local: "PrintDeviceType"}
	for _, tc := range []struct {
		name string
		m    Message
		want bool
	}{
		{"anything", Message{}, true},
		{"NVT", Message{Types: []xml.Name{NetworkVideoTransmitter}}, true},
		{"both", Message{Types: types}, true},
		{"printer", Message{Types: []xml.Name{printer}}, false},
		{"NVT and printer", Message{Types: []xml.Name{NetworkVideoTransmitter, printer}}, false},
		{"same local name, other namespace", Message{Types: []xml.Name{{Space: "urn:x", Local: "NetworkVideoTransmitter"}}}, false},
		{"scope prefix", Message{Scopes: []string{"onvif://www.onvif.org/name"}}, true},
		{"scope prefix with slash", Message{Scopes: []string{"onvif://www.onvif.org/type/"}}, true},
		{"not a segment prefix", Message{Scopes: []string{"onvif://www.onvif.org/nam"}}, false},
		{"strcmp0 exact", Message{MatchBy: MatchStrcmp0, Scopes: scopes[:1]}, true},
		{"strcmp0 prefix", Message{MatchBy: MatchStrcmp0, Scopes: []string{"onvif://www.onvif.org/name"}}, false},
		{"unknown rule", Message{MatchBy: "urn:x", Scopes: scopes[:1]}, false},
	} {
		if got := tc.m.MatchesTarget(types, scopes); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
