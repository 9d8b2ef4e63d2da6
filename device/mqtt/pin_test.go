package mqtt

import (
	"crypto/tls"
	"strings"
	"testing"

	"github.com/camd-project/camd/device/mqtt/mqtttest"
)

// The pin accepts the broker's certificate and no other, whoever signed
// it.
func TestPinnedCertificate(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{TLS: true})
	_, conf, err := brokerConfig(Options{Broker: b.URL, PinSHA256: strings.Repeat("ab", 32)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tls.Dial("tcp", b.Addr, conf); err == nil || !strings.Contains(err.Error(), "not the pinned one") {
		t.Fatalf("dial with a wrong pin: %v", err)
	}
	_, conf, _ = brokerConfig(Options{Broker: b.URL, PinSHA256: b.CertSHA256})
	c, err := tls.Dial("tcp", b.Addr, conf)
	if err != nil {
		t.Fatalf("dial with the pin: %v", err)
	}
	c.Close()
	// Without a pin or a CA file, the system's roots do not know the
	// test's CA.
	_, conf, _ = brokerConfig(Options{Broker: b.URL})
	if _, err := tls.Dial("tcp", b.Addr, conf); err == nil {
		t.Fatal("a broker signed by an unknown CA was accepted")
	}
}
