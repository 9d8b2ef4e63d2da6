package network

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// The text of wpa_supplicant's control interface (wpa_supplicant's
// ctrl_iface.c, docs/network.md "The control protocol"): each parser
// here has a fuzz test.

// hexSSID is the form of SET_NETWORK ssid that carries any bytes: bare
// hex, no quotes.
func hexSSID(ssid string) string { return hex.EncodeToString([]byte(ssid)) }

// quoted is a string value of SET_NETWORK: wpa_supplicant takes what
// lies between the first character's quote and the last quote of the
// line (wpa_config_parse_string), so quotes inside need no escape; the
// string ends at a NUL or a line end, which Credentials.Check refuses.
func quoted(s string) string { return `"` + s + `"` }

// PrintfDecode undoes printf_encode, which wpa_supplicant applies to
// SSIDs in SCAN_RESULTS, LIST_NETWORKS, STATUS and events, and takes in
// P"…" values: \\ \" \e \n \r \t and \xNN.
func PrintfDecode(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 >= len(s) {
			return "", fmt.Errorf("%w: text ends in an escape: %q", ErrSupplicant, s)
		}
		i++
		switch s[i] {
		case '\\', '"':
			b.WriteByte(s[i])
		case 'e':
			b.WriteByte(0x1b)
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'x':
			if i+2 >= len(s) {
				return "", fmt.Errorf("%w: short \\x escape: %q", ErrSupplicant, s)
			}
			v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
			if err != nil {
				return "", fmt.Errorf("%w: bad \\x escape: %q", ErrSupplicant, s)
			}
			b.WriteByte(byte(v))
			i += 2
		default:
			return "", fmt.Errorf("%w: unknown escape \\%c: %q", ErrSupplicant, s[i], s)
		}
	}
	return b.String(), nil
}

// PrintfEncode is wpa_supplicant's printf_encode (wpatest's side of
// PrintfDecode).
func PrintfEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case 0x1b:
			b.WriteString(`\e`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if c >= 32 && c <= 126 {
				b.WriteByte(c)
			} else {
				fmt.Fprintf(&b, `\x%02x`, c)
			}
		}
	}
	return b.String()
}

// parseScanResults reads SCAN_RESULTS: a header line, then one line per
// BSS, tab-separated: bssid, frequency, signal level, flags, ssid.
func parseScanResults(text string) ([]Network, error) {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	if !strings.HasPrefix(lines[0], "bssid / frequency / signal level / flags / ssid") {
		return nil, fmt.Errorf("%w: SCAN_RESULTS: no header: %.40q", ErrSupplicant, lines[0])
	}
	var list []Network
	for _, line := range lines[1:] {
		f := strings.SplitN(line, "\t", 5)
		if len(f) < 4 {
			return nil, fmt.Errorf("%w: SCAN_RESULTS: %.80q", ErrSupplicant, line)
		}
		freq, err1 := strconv.Atoi(f[1])
		signal, err2 := strconv.Atoi(f[2])
		if err1 != nil || err2 != nil || len(f[0]) != 17 {
			return nil, fmt.Errorf("%w: SCAN_RESULTS: %.80q", ErrSupplicant, line)
		}
		n := Network{BSSID: f[0], Freq: freq, Channel: Channel(freq), Signal: signal, Security: securityOf(f[3])}
		if len(f) == 5 {
			if n.SSID, err1 = PrintfDecode(f[4]); err1 != nil {
				return nil, err1
			}
		}
		list = append(list, n)
	}
	return list, nil
}

// securityOf reads the flags of a scan result ([WPA2-PSK-CCMP][ESS],
// [RSN-SAE-CCMP], [WPA2-PSK+SAE-CCMP], [WEP], [WPA2-EAP-CCMP]).
func securityOf(flags string) Security {
	psk := strings.Contains(flags, "-PSK")
	sae := strings.Contains(flags, "SAE")
	switch {
	case psk && sae:
		return PSKSAE
	case sae:
		return SAE
	case psk:
		return PSK
	case strings.Contains(flags, "EAP"):
		return EAP
	case strings.Contains(flags, "WEP"):
		return WEP
	}
	return Open
}

// parseKeyValues reads the key=value lines of STATUS and SIGNAL_POLL.
func parseKeyValues(text string) (map[string]string, error) {
	kv := map[string]string{}
	for line := range strings.SplitSeq(strings.TrimRight(text, "\n"), "\n") {
		if line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%w: not key=value: %.80q", ErrSupplicant, line)
		}
		kv[k] = v
	}
	return kv, nil
}

// event is one unsolicited message of an attached monitor:
// "<3>CTRL-EVENT-CONNECTED - Connection to 02:00:00:00:01:00 completed
// [id=0 id_str=]".
type event struct {
	Name   string
	Fields map[string]string
}

// parseEvent reads an unsolicited message: an optional "IFNAME=wlan0 "
// (the global control interface), the priority "<N>", the event name,
// then key=value fields, values quoted or bare, some in brackets.
func parseEvent(msg string) (event, error) {
	if rest, ok := strings.CutPrefix(msg, "IFNAME="); ok {
		_, msg, _ = strings.Cut(rest, " ")
	}
	if !strings.HasPrefix(msg, "<") {
		return event{}, fmt.Errorf("%w: event without a priority: %.80q", ErrSupplicant, msg)
	}
	end := strings.IndexByte(msg, '>')
	if end < 2 {
		return event{}, fmt.Errorf("%w: event without a priority: %.80q", ErrSupplicant, msg)
	}
	if _, err := strconv.Atoi(msg[1:end]); err != nil {
		return event{}, fmt.Errorf("%w: bad event priority: %.80q", ErrSupplicant, msg)
	}
	msg = strings.TrimRight(msg[end+1:], "\n")
	name, rest, _ := strings.Cut(msg, " ")
	if name == "" {
		return event{}, fmt.Errorf("%w: event without a name", ErrSupplicant)
	}
	ev := event{Name: name, Fields: map[string]string{}}
	for rest != "" {
		rest = strings.TrimLeft(rest, " [")
		eq := strings.IndexByte(rest, '=')
		sp := strings.IndexAny(rest, " ]")
		if eq < 0 || (sp >= 0 && sp < eq) {
			// a word that is not a field ("-", "Connection", …)
			if sp < 0 {
				break
			}
			rest = rest[sp+1:]
			continue
		}
		key := rest[:eq]
		rest = rest[eq+1:]
		var val string
		if strings.HasPrefix(rest, `"`) {
			i := 1
			for ; i < len(rest) && rest[i] != '"'; i++ {
				if rest[i] == '\\' {
					i++
				}
			}
			if i >= len(rest) {
				return event{}, fmt.Errorf("%w: unterminated quote in event: %.80q", ErrSupplicant, msg)
			}
			v, err := PrintfDecode(rest[1:i])
			if err != nil {
				return event{}, err
			}
			val, rest = v, rest[i+1:]
		} else {
			end := strings.IndexAny(rest, " ]")
			if end < 0 {
				end = len(rest)
			}
			val, rest = rest[:end], rest[end:]
		}
		ev.Fields[key] = val
	}
	return ev, nil
}

// id is the network id an event is about (-1 when it names none).
func (e event) id() int {
	v, ok := e.Fields["id"]
	if !ok {
		return -1
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return -1
	}
	return n
}
