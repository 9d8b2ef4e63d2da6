package pairing

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

// vectorPayload is the payload of docs/pairing.md's test vectors: every
// byte field counts up from a known start.
func vectorPayload() Payload {
	var p Payload
	for i := range p.DeviceID {
		p.DeviceID[i] = byte(i)
	}
	for i := range p.Fingerprint {
		p.Fingerprint[i] = byte(0x20 + i)
	}
	for i := range p.Secret {
		p.Secret[i] = byte(0x40 + i)
	}
	p.Discriminator = 0xabc
	p.Role = Owner
	return p
}

// The golden vectors in docs/pairing.md, checked against an independent
// encoder (Python's base64.b32encode and binascii.crc_hqx(data, 0xffff)).
// Changing them is a format change.
var golden = []struct {
	name string
	p    func() Payload
	want string
}{
	{"setup", vectorPayload, "CAMD1:AEAAAAICAMCAKBQHBAESAIJCEMSCKJRHFAUSUKZMFUXC6MBRGIZTINJWG44DSOR3HQ6T4P2AIFBEGRCFIZDUQSKKJNGE2TSPBK6OQRQ"},
	{"setup with host", func() Payload {
		p := vectorPayload()
		p.Host = netip.MustParseAddrPort("192.168.1.20:8443")
		return p
	}, "CAMD1:AEAQAAICAMCAKBQHBAESAIJCEMSCKJRHFAUSUKZMFUXC6MBRGIZTINJWG44DSOR3HQ6T4P2AIFBEGRCFIZDUQSKKJNGE2TSPBK6AJQFIAEKCB65QOI"},
	{"viewer invite", func() Payload {
		p := vectorPayload()
		p.Kind, p.Role = Invite, Viewer
		return p
	}, "CAMD1:AEBAAAICAMCAKBQHBAESAIJCEMSCKJRHFAUSUKZMFUXC6MBRGIZTINJWG44DSOR3HQ6T4P2AIFBEGRCFIZDUQSKKJNGE2TSPBK6FWJQ"},
}

func TestGoldenVectors(t *testing.T) {
	for _, g := range golden {
		t.Run(g.name, func(t *testing.T) {
			p := g.p()
			if got := p.String(); got != g.want {
				t.Fatalf("encode:\n got %s\nwant %s", got, g.want)
			}
			back, err := Parse(g.want)
			if err != nil {
				t.Fatal(err)
			}
			if back != p {
				t.Fatalf("decode: %+v, want %+v", back, p)
			}
		})
	}
}

func TestCRC16IsCCITTFalse(t *testing.T) {
	if got := crc16([]byte("123456789")); got != 0x29b1 {
		t.Fatalf("check value %#x, want 0x29b1", got)
	}
}

func TestPayloadIsQRAlphanumeric(t *testing.T) {
	const alnum = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
	p := vectorPayload()
	p.Host = netip.MustParseAddrPort("[fe80::1]:8443")
	for _, r := range p.String() {
		if !strings.ContainsRune(alnum, r) {
			t.Fatalf("%q is not in QR alphanumeric mode", r)
		}
	}
}

func TestParseAcceptsLowerCaseAndSpace(t *testing.T) {
	s := "  " + strings.ToLower(golden[0].want) + "\n"
	if p, err := Parse(s); err != nil || p != vectorPayload() {
		t.Fatalf("%v", err)
	}
}

// TestParseAcceptsTheAppLink: the link in the device's QR code and in
// invitations (the web app's pairing screen, the code in the fragment)
// reads as its code; a link to anything else does not.
func TestParseAcceptsTheAppLink(t *testing.T) {
	want, _ := Parse(golden[1].want)
	for _, link := range []string{
		"https://192.168.1.20:8443/#pair=" + golden[1].want,
		" https://[fe80::1]:8443/#pair=" + strings.ToLower(golden[1].want) + "\n",
	} {
		if p, err := Parse(link); err != nil || p != want {
			t.Errorf("Parse(%q) = %+v, %v", link, p, err)
		}
	}
	for _, link := range []string{"https://camera.example/#live", "https://camera.example/?pair=" + golden[1].want} {
		if _, err := Parse(link); !errors.Is(err, ErrNotPayload) {
			t.Errorf("Parse(%q) = %v, want ErrNotPayload", link, err)
		}
	}
}

func TestParseErrors(t *testing.T) {
	good := golden[1].want
	flip := []byte(good)
	flip[20] = map[bool]byte{true: 'B', false: 'A'}[flip[20] == 'A']
	cases := []struct {
		name, in string
		want     error
	}{
		{"empty", "", ErrNotPayload},
		{"wifi code", "WIFI:S:home;T:WPA;P:secret;;", ErrNotPayload},
		{"future version", "CAMD2:AAAA", ErrVersion},
		{"not base32", "CAMD1:0189!!", ErrNotPayload},
		{"too short", "CAMD1:AEAAAAIB", ErrNotPayload},
		{"one character changed", string(flip), ErrDamaged},
		{"cut short", good[:len(good)-8], ErrDamaged},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := Parse(c.in); !errors.Is(err, c.want) {
				t.Fatalf("Parse(%q) = %v, want %v", c.in, err, c.want)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, g := range golden {
		f.Add(g.want)
	}
	f.Add("CAMD1:")
	f.Add("CAMD1:AEAQ")
	f.Add("https://192.168.1.20:8443/#pair=" + golden[1].want)
	f.Fuzz(func(t *testing.T, s string) {
		p, err := Parse(s)
		if err != nil {
			return
		}
		// Anything accepted encodes back to an equivalent payload.
		again, err := Parse(p.String())
		if err != nil || again != p {
			t.Fatalf("round trip of %q: %v", s, err)
		}
	})
}

func ExampleParse() {
	p, err := Parse("CAMD1:AEAAAAICAMCAKBQHBAESAIJCEMSCKJRHFAUSUKZMFUXC6MBRGIZTINJWG44DSOR3HQ6T4P2AIFBEGRCFIZDUQSKKJNGE2TSPBK6OQRQ")
	fmt.Println(err, p.DeviceIDString(), p.Discriminator, p.Role)
	// Output: <nil> AAAQEAYEAUDAOCAJ 2748 owner
}
