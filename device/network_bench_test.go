package device

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/camd-project/camd/device/api"
	"github.com/camd-project/camd/network"
	"github.com/camd-project/camd/network/wpatest"
)

// BenchmarkWiFiJoinToAnswer is the time from the owner's join request to
// the camera answering HTTPS on its address on the new network: the
// simulated radio (no association delay: camd's own share), and
// wpa_supplicant's protocol over a control socket (the fake, which
// associates at once). The new network's address is a loopback one
// (127.0.0.2/.3) on which camd, listening on every address, answers.
func BenchmarkWiFiJoinToAnswer(b *testing.B) {
	for _, kind := range []string{"sim", "wpa_supplicant"} {
		b.Run(kind, func(b *testing.B) {
			const pass = "bench passphrase"
			d := running(b, func(c *Config) {
				c.Listen = "0.0.0.0:0"
				c.Discovery.Enabled, c.Discovery.ONVIF = false, false
				c.Network.WiFi = kind
				c.Network.simNetworks = []network.SimNetwork{{SSID: "new", Security: network.PSK, Passphrase: pass, Signal: -50, Freq: 2437, Address: "127.0.0.2"}}
				if kind == "wpa_supplicant" {
					fake, err := wpatest.Start(b.TempDir(), wpatest.AP{SSID: "new", BSSID: "02:00:00:00:01:00", Freq: 2437, Signal: -50, Security: network.PSK, Passphrase: pass, Address: "127.0.0.3"})
					if err != nil {
						b.Fatal(err)
					}
					b.Cleanup(fake.Close)
					c.Network.ControlSocket = fake.Path
				}
			})
			owner := owner(b, d)
			port := d.Addr().(*net.TCPAddr).Port
			client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true}, Timeout: 5 * time.Second}
			var worst time.Duration
			b.ResetTimer()
			for b.Loop() {
				start := time.Now()
				code, body := call(b, d, "POST", "/api/v1/network/wifi", owner, api.JoinRequest{SSID: "new", Passphrase: pass})
				if code != 200 {
					b.Fatalf("join: %d %s", code, body)
				}
				var st network.Status
				if err := json.Unmarshal(body, &st); err != nil || st.Address == "" {
					b.Fatalf("joined: %s", body)
				}
				for {
					resp, err := client.Get(fmt.Sprintf("https://%s/health", net.JoinHostPort(st.Address, fmt.Sprint(port))))
					if err == nil {
						resp.Body.Close()
						if resp.StatusCode == 200 {
							break
						}
					}
				}
				worst = max(worst, time.Since(start))
				b.StopTimer()
				if code, body := call(b, d, "DELETE", "/api/v1/network/wifi", owner, nil); code != 204 {
					b.Fatalf("forget: %d %s", code, body)
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(worst.Microseconds())/1000, "worst-ms")
		})
	}
}
