package pairing

import (
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Prefix starts every payload; the digit is the format version.
const Prefix = "CAMD1:"

// Sizes of the payload's fixed fields, in bytes.
const (
	DeviceIDSize    = 10
	FingerprintSize = 32
	SecretSize      = 16
)

// Kind tells an owner-setup payload from an invitation.
type Kind uint8

// Payload kinds.
const (
	Setup  Kind = iota // the device's own pairing secret (sticker, screen)
	Invite             // a one-time invitation made by an owner
)

// Payload errors.
var (
	ErrNotPayload = errors.New("pairing: not a camd pairing code")
	ErrDamaged    = errors.New("pairing: pairing code is damaged (checksum mismatch; scan it again)")
	ErrVersion    = errors.New("pairing: pairing code of an unknown version")
)

const (
	flagHost   = 1 << 0
	flagInvite = 1 << 1
	flagOwner  = 1 << 2
)

// Payload is what the QR code carries.
type Payload struct {
	Kind Kind
	// Role is the role an invitation grants (Setup always makes an owner
	// of the first user).
	Role          Role
	DeviceID      [DeviceIDSize]byte
	Fingerprint   [FingerprintSize]byte
	Secret        [SecretSize]byte
	Discriminator uint16 // 12 bits
	// Host optionally tells where to connect.
	Host netip.AddrPort
}

// enc is RFC 4648 base32 without padding: only A-Z and 2-7, which QR
// codes store in their compact alphanumeric mode.
var enc = base32.StdEncoding.WithPadding(base32.NoPadding)

// String encodes the payload: Prefix, then base32 of version, flags, the
// fixed fields, the optional host and a CRC-16/CCITT-FALSE of all that.
func (p Payload) String() string {
	b := make([]byte, 0, 2+DeviceIDSize+FingerprintSize+SecretSize+2+19+2)
	var flags byte
	if p.Host.IsValid() {
		flags |= flagHost
	}
	if p.Kind == Invite {
		flags |= flagInvite
		if p.Role == Owner {
			flags |= flagOwner
		}
	}
	b = append(b, 1, flags)
	b = append(b, p.DeviceID[:]...)
	b = append(b, p.Fingerprint[:]...)
	b = append(b, p.Secret[:]...)
	b = binary.BigEndian.AppendUint16(b, p.Discriminator&0xfff)
	if p.Host.IsValid() {
		a := p.Host.Addr().Unmap()
		if a.Is4() {
			b = append(b, 4)
		} else {
			b = append(b, 6)
		}
		b = append(b, a.AsSlice()...)
		b = binary.BigEndian.AppendUint16(b, p.Host.Port())
	}
	b = binary.BigEndian.AppendUint16(b, crc16(b))
	return Prefix + enc.EncodeToString(b)
}

// Parse decodes a payload. It accepts lower case and surrounding space,
// and the link that opens the web app's pairing screen with the payload
// in its fragment (`https://HOST:PORT/#pair=CAMD1:…`, what invitations and
// the device's own QR code carry).
func Parse(s string) (Payload, error) {
	var p Payload
	s = strings.ToUpper(strings.TrimSpace(s))
	if strings.HasPrefix(s, "HTTPS://") {
		if _, code, ok := strings.Cut(s, "/#PAIR="); ok {
			s = code
		}
	}
	if !strings.HasPrefix(s, "CAMD") {
		return p, ErrNotPayload
	}
	if !strings.HasPrefix(s, Prefix) {
		return p, fmt.Errorf("%w (%.6s)", ErrVersion, s)
	}
	b, err := enc.DecodeString(s[len(Prefix):])
	if err != nil {
		return p, fmt.Errorf("%w: %v", ErrNotPayload, err)
	}
	const fixed = 2 + DeviceIDSize + FingerprintSize + SecretSize + 2
	if len(b) < fixed+2 {
		return p, fmt.Errorf("%w: too short", ErrNotPayload)
	}
	body, sum := b[:len(b)-2], binary.BigEndian.Uint16(b[len(b)-2:])
	if crc16(body) != sum {
		return p, ErrDamaged
	}
	if body[0] != 1 {
		return p, fmt.Errorf("%w (format %d)", ErrVersion, body[0])
	}
	flags := body[1]
	if flags&^(flagHost|flagInvite|flagOwner) != 0 {
		return p, fmt.Errorf("%w: unknown flags %#x", ErrNotPayload, flags)
	}
	rest := body[2:]
	copy(p.DeviceID[:], rest)
	rest = rest[DeviceIDSize:]
	copy(p.Fingerprint[:], rest)
	rest = rest[FingerprintSize:]
	copy(p.Secret[:], rest)
	rest = rest[SecretSize:]
	p.Discriminator = binary.BigEndian.Uint16(rest)
	rest = rest[2:]
	if p.Discriminator > 0xfff {
		return p, fmt.Errorf("%w: discriminator out of range", ErrNotPayload)
	}
	p.Role = Owner
	if flags&flagInvite != 0 {
		p.Kind = Invite
		if flags&flagOwner == 0 {
			p.Role = Viewer
		}
	}
	if flags&flagHost != 0 {
		if len(rest) < 1 {
			return p, fmt.Errorf("%w: host missing", ErrNotPayload)
		}
		n := map[byte]int{4: 4, 6: 16}[rest[0]]
		if n == 0 || len(rest) != 1+n+2 {
			return p, fmt.Errorf("%w: bad host", ErrNotPayload)
		}
		a, _ := netip.AddrFromSlice(rest[1 : 1+n])
		p.Host = netip.AddrPortFrom(a, binary.BigEndian.Uint16(rest[1+n:]))
		rest = rest[1+n+2:]
	}
	if len(rest) != 0 {
		return p, fmt.Errorf("%w: %d trailing bytes", ErrNotPayload, len(rest))
	}
	return p, nil
}

// DeviceIDString is the device ID as camd writes it (base32).
func (p Payload) DeviceIDString() string { return enc.EncodeToString(p.DeviceID[:]) }

// ParseDeviceID decodes a device ID string.
func ParseDeviceID(s string) ([DeviceIDSize]byte, error) {
	var id [DeviceIDSize]byte
	b, err := base32.StdEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		b, err = enc.DecodeString(s)
	}
	if err != nil || len(b) != DeviceIDSize {
		return id, fmt.Errorf("pairing: bad device ID %q", s)
	}
	copy(id[:], b)
	return id, nil
}

// crc16 is CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF).
func crc16(b []byte) uint16 {
	crc := uint16(0xffff)
	for _, c := range b {
		crc ^= uint16(c) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}
