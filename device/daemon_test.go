package device

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"
)

func testConfig(t *testing.T) Config {
	c := Defaults()
	c.Data = t.TempDir()
	c.Listen = "127.0.0.1:0"
	c.Video.Width, c.Video.Height, c.Video.FPS = 320, 240, 15
	return c
}

func TestDaemonServesHealthOverHTTPSAndStops(t *testing.T) {
	d, err := New(testConfig(t), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()

	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, Timeout: 5 * time.Second}
	var resp *http.Response
	for i := 0; i < 50; i++ {
		if resp, err = client.Get("https://" + d.Addr().String() + "/health"); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	json.NewDecoder(resp.Body).Decode(&h)
	resp.Body.Close()
	if h["status"] != "ok" {
		t.Fatalf("health: %v", h)
	}
	if cs := resp.TLS.PeerCertificates; len(cs) == 0 || cs[0].PublicKeyAlgorithm.String() != "ECDSA" {
		t.Fatal("HTTPS does not serve the device's ECDSA certificate")
	}
	// The page and its script come from the embedded files.
	for _, p := range []string{"/", "/app.js"} {
		r, err := client.Get("https://" + d.Addr().String() + p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if r.StatusCode != 200 || len(b) < 100 || r.Header.Get("Content-Security-Policy") == "" {
			t.Fatalf("GET %s: %d, %d bytes", p, r.StatusCode, len(b))
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	d.Close()
}

func TestDaemonRefusesPortInUse(t *testing.T) {
	a, err := New(testConfig(t), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	cfg := testConfig(t)
	cfg.Listen = a.Addr().String()
	if _, err := New(cfg, slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("a second daemon took the same port")
	}
}

// TLS 1.2 offers only AEAD suites with forward secrecy: a client that
// offers only CBC suites is refused, an AEAD one gets in; TLS 1.3 too.
func TestTLSOffersOnlyAEAD(t *testing.T) {
	d := running(t)
	dial := func(cfg *tls.Config) error {
		cfg.InsecureSkipVerify = true
		c, err := tls.Dial("tcp", d.Addr().String(), cfg)
		if err == nil {
			c.Close()
		}
		return err
	}
	for _, cbc := range []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256} {
		if err := dial(&tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{cbc}}); err == nil {
			t.Errorf("TLS 1.2 with %s was accepted", tls.CipherSuiteName(cbc))
		}
	}
	for _, aead := range []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256} {
		if err := dial(&tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{aead}}); err != nil {
			t.Errorf("TLS 1.2 with %s: %v", tls.CipherSuiteName(aead), err)
		}
	}
	if err := dial(&tls.Config{MinVersion: tls.VersionTLS13}); err != nil {
		t.Errorf("TLS 1.3: %v", err)
	}
	if err := dial(&tls.Config{MaxVersion: tls.VersionTLS11}); err == nil {
		t.Error("TLS 1.1 was accepted")
	}
}
