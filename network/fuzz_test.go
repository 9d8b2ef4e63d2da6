package network

import (
	"strings"
	"testing"
)

// The parsers of wpa_supplicant's answers and events and of Wi-Fi QR
// codes take anything without panicking; what they accept is consistent.

func FuzzParseScanResults(f *testing.F) {
	f.Add("bssid / frequency / signal level / flags / ssid\n02:00:00:00:01:00\t2437\t-45\t[WPA2-PSK-CCMP][ESS]\thome\n02:00:00:00:02:00\t5180\t-60\t[WPA2-SAE-CCMP][ESS]\tcaf\\xc3\\xa9 \\\"q\\\"\n")
	f.Fuzz(func(t *testing.T, text string) {
		list, err := parseScanResults(text)
		if err != nil {
			return
		}
		for _, n := range list {
			if len(n.BSSID) != 17 {
				t.Fatalf("accepted BSSID %q", n.BSSID)
			}
		}
	})
}

func FuzzParseNetworks(f *testing.F) {
	f.Add("network id / ssid / bssid / flags\n0\thome\tany\t[CURRENT]\n1\tcafe\tany\t[DISABLED]\n")
	f.Fuzz(func(t *testing.T, text string) {
		list, err := parseNetworks(text)
		if err != nil {
			return
		}
		for _, n := range list {
			if n.ID < 0 {
				t.Fatalf("accepted id %d", n.ID)
			}
		}
	})
}

func FuzzParseKeyValues(f *testing.F) {
	f.Add("bssid=02:00:00:00:01:00\nfreq=2437\nssid=home\nid=0\nmode=station\nkey_mgmt=WPA2-PSK\nwpa_state=COMPLETED\nip_address=192.168.1.20\n")
	f.Add("RSSI=-45\nLINKSPEED=65\nNOISE=9999\nFREQUENCY=2437\n")
	f.Fuzz(func(t *testing.T, text string) {
		kv, err := parseKeyValues(text)
		if err != nil {
			return
		}
		statusOf(kv) // never panics
		if _, ok := kv[""]; ok {
			t.Fatal("accepted an empty key")
		}
	})
}

func FuzzParseEvent(f *testing.F) {
	f.Add("<3>CTRL-EVENT-CONNECTED - Connection to 02:00:00:00:01:00 completed [id=0 id_str=]")
	f.Add(`<3>CTRL-EVENT-SSID-TEMP-DISABLED id=1 ssid="a \"b\" c" auth_failures=1 duration=10 reason=WRONG_KEY`)
	f.Add("IFNAME=wlan0 <3>CTRL-EVENT-NETWORK-NOT-FOUND")
	f.Fuzz(func(t *testing.T, msg string) {
		ev, err := parseEvent(msg)
		if err != nil {
			return
		}
		if ev.Name == "" || strings.Contains(ev.Name, " ") {
			t.Fatalf("event name %q", ev.Name)
		}
		ev.id()
	})
}

// PrintfDecode undoes PrintfEncode for any bytes.
func FuzzPrintfEncoding(f *testing.F) {
	f.Add("caf\xc3\xa9 \"quoted\" \\ \x1b\n\t\x00")
	f.Fuzz(func(t *testing.T, s string) {
		got, err := PrintfDecode(PrintfEncode(s))
		if err != nil || got != s {
			t.Fatalf("%q: round trip %q %v", s, got, err)
		}
		PrintfDecode(s) // never panics
	})
}

// What ParseWiFiCode accepts can be joined.
func FuzzParseWiFiCode(f *testing.F) {
	f.Add(`WIFI:T:WPA;S:home;P:home passphrase;;`)
	f.Add(`WIFI:S:caf\;e;T:SAE;P:p\:a\\ss;H:true;;`)
	f.Add(`WIFI:T:nopass;S:cafe;;`)
	f.Fuzz(func(t *testing.T, text string) {
		c, err := ParseWiFiCode(text)
		if err != nil {
			return
		}
		if _, err := c.Check(); err != nil {
			t.Fatalf("accepted %v: %v", c, err)
		}
	})
}
