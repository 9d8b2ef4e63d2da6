package network

import (
	"errors"
	"fmt"
	"strings"
)

// ErrWiFiCode: the text is not a Wi-Fi QR code camd can use.
var ErrWiFiCode = errors.New("network: not a Wi-Fi code")

// ParseWiFiCode reads the payload of a Wi-Fi QR code, as phones show to
// share a network: WIFI:T:WPA;S:home;P:secret;H:true;; with fields in any
// order, and \ escaping \ ; , : and ". T is WPA (WPA2 or WPA3: joined as
// PSK, or SAE with R:1 or T:SAE), SAE, nopass or absent (open); WEP is
// refused.
func ParseWiFiCode(text string) (Credentials, error) {
	rest, ok := strings.CutPrefix(text, "WIFI:")
	if !ok {
		return Credentials{}, fmt.Errorf("%w: no WIFI: prefix", ErrWiFiCode)
	}
	fields := map[string]string{}
	for rest != "" && rest != ";" {
		var field strings.Builder
		i := 0
		for ; i < len(rest) && rest[i] != ';'; i++ {
			if rest[i] == '\\' && i+1 < len(rest) {
				i++
			}
			field.WriteByte(rest[i])
		}
		if i == len(rest) {
			return Credentials{}, fmt.Errorf("%w: a field does not end with ;", ErrWiFiCode)
		}
		rest = rest[i+1:]
		// The key is the text before the first unescaped colon: keys
		// hold no escapes, so the first colon of the raw field is it.
		k, v, ok := strings.Cut(field.String(), ":")
		if !ok {
			return Credentials{}, fmt.Errorf("%w: field without a key", ErrWiFiCode)
		}
		if _, dup := fields[k]; dup {
			return Credentials{}, fmt.Errorf("%w: field %s twice", ErrWiFiCode, k)
		}
		fields[k] = v
	}
	c := Credentials{SSID: fields["S"], Passphrase: fields["P"], Hidden: strings.EqualFold(fields["H"], "true")}
	switch t := strings.ToUpper(fields["T"]); t {
	case "WPA", "WPA2":
		c.Security = PSK
		if fields["R"] == "1" {
			c.Security = SAE
		}
	case "SAE", "WPA3":
		c.Security = SAE
	case "", "NOPASS":
		c.Security = Open
	default:
		return Credentials{}, fmt.Errorf("%w: security %q is not supported", ErrWiFiCode, fields["T"])
	}
	c, err := c.Check()
	if err != nil {
		return Credentials{}, fmt.Errorf("%w: %w", ErrWiFiCode, err)
	}
	return c, nil
}
