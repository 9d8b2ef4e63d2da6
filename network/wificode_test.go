package network_test

import (
	"errors"
	"testing"

	"github.com/camd-project/camd/network"
)

func TestParseWiFiCode(t *testing.T) {
	for _, c := range []struct {
		text string
		want network.Credentials
		err  error
	}{
		{`WIFI:T:WPA;S:home;P:home passphrase;;`, network.Credentials{SSID: "home", Security: network.PSK, Passphrase: "home passphrase"}, nil},
		{`WIFI:S:caf\;e\:x;T:WPA;P:p\\a\"ss\,word;H:true;;`, network.Credentials{SSID: `caf;e:x`, Security: network.PSK, Passphrase: `p\a"ss,word`, Hidden: true}, nil},
		{`WIFI:T:SAE;S:wpa3;P:pw;;`, network.Credentials{SSID: "wpa3", Security: network.SAE, Passphrase: "pw"}, nil},
		{`WIFI:T:WPA;R:1;S:wpa3;P:pw;;`, network.Credentials{SSID: "wpa3", Security: network.SAE, Passphrase: "pw"}, nil},
		{`WIFI:T:nopass;S:cafe;P:;;`, network.Credentials{SSID: "cafe", Security: network.Open}, nil},
		{`WIFI:S:cafe;;`, network.Credentials{SSID: "cafe", Security: network.Open}, nil},
		{`WIFI:T:WEP;S:old;P:12345;;`, network.Credentials{}, network.ErrWiFiCode},
		{`WIFI:T:WPA;S:home;P:short;;`, network.Credentials{}, network.ErrCredentials},
		{`WIFI:T:WPA;S:home;P:home passphrase`, network.Credentials{}, network.ErrWiFiCode},
		{`WIFI:S:a;S:b;;`, network.Credentials{}, network.ErrWiFiCode},
		{`https://example.com/`, network.Credentials{}, network.ErrWiFiCode},
	} {
		got, err := network.ParseWiFiCode(c.text)
		if !errors.Is(err, c.err) || err == nil && got != c.want {
			t.Errorf("%s: %#v %v, want %#v %v", c.text, got, err, c.want, c.err)
		}
	}
}
