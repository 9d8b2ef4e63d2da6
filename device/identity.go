package device

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base32"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/camd-project/camd/discovery"
	"github.com/camd-project/camd/internal/durable"
)

// Identity is what makes this device itself: a random ID (never derived
// from a MAC or serial), the TLS certificate its HTTPS port serves, and the
// DTLS certificate of its WebRTC sessions. All of it lives in the data
// directory, readable by the daemon's user only.
type Identity struct {
	ID   string
	TLS  tls.Certificate
	DTLS webrtc.Certificate
	// Fingerprint is the SHA-256 of the TLS certificate (DER), in hex.
	Fingerprint string
	// StreamKeyRoot derives the secrets of stream keys
	// (pairing.Options.StreamKeyRoot): a file of its own, so that the
	// catalog holds no key's secret.
	StreamKeyRoot []byte
}

// FingerprintBytes is Fingerprint as bytes.
func (id *Identity) FingerprintBytes() [32]byte { return sha256.Sum256(id.TLS.Certificate[0]) }

// Files of the identity in the data directory.
const (
	idFile   = "device-id"
	tlsCert  = "tls.crt"
	tlsKey   = "tls.key"
	dtlsFile = "dtls.pem"
	keyRoot  = "stream-keys.key"
)

// LoadIdentity reads the identity from dir, creating what is missing.
func LoadIdentity(dir string) (*Identity, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("device: data directory: %w", err)
	}
	id, err := loadOrCreateID(filepath.Join(dir, idFile))
	if err != nil {
		return nil, err
	}
	cert, err := loadOrCreateTLS(filepath.Join(dir, tlsCert), filepath.Join(dir, tlsKey), discovery.HostName(id))
	if err != nil {
		return nil, err
	}
	dtls, err := loadOrCreateDTLS(filepath.Join(dir, dtlsFile))
	if err != nil {
		return nil, err
	}
	root, err := loadOrCreateKeyRoot(filepath.Join(dir, keyRoot))
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(cert.Certificate[0])
	return &Identity{ID: id, TLS: cert, DTLS: *dtls, Fingerprint: hex.EncodeToString(sum[:]), StreamKeyRoot: root}, nil
}

// loadOrCreateKeyRoot reads the stream keys' root (32 random bytes), or
// makes it. A damaged one is replaced: the keys made under it stop
// working, and the owner makes new ones.
func loadOrCreateKeyRoot(path string) ([]byte, error) {
	if b, err := os.ReadFile(path); err == nil && len(b) == 32 {
		return b, nil
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("device: %w", err)
	}
	b := make([]byte, 32)
	rand.Read(b)
	if err := durable.WriteFile(path, b, 0o600); err != nil {
		return nil, err
	}
	return b, nil
}

func loadOrCreateID(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil {
		if id := strings.TrimSpace(string(b)); len(id) >= 16 {
			return id, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("device: %w", err)
	}
	var b [10]byte
	rand.Read(b[:])
	id := base32.StdEncoding.EncodeToString(b[:])
	if err := durable.WriteFile(path, []byte(id+"\n"), 0o600); err != nil {
		return "", err
	}
	return id, nil
}

func newKey() (*ecdsa.PrivateKey, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }

// selfSigned makes the device's certificate for the host names hosts.
func selfSigned(key *ecdsa.PrivateKey, cn string, hosts ...string) ([]byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(20, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		DNSNames:              hosts,
	}
	return x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
}

// loadOrCreateTLS loads the TLS certificate, or makes one that names the
// mDNS host name camd announces (mdnsHost), camd.local and localhost.
// A certificate made before it named mdnsHost is kept: paired clients pin
// its fingerprint, and a factory reset makes a new one.
func loadOrCreateTLS(certPath, keyPath, mdnsHost string) (tls.Certificate, error) {
	if c, err := tls.LoadX509KeyPair(certPath, keyPath); err == nil {
		return c, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return tls.Certificate{}, fmt.Errorf("device: TLS identity damaged (%w); factory reset makes a new one", err)
	}
	key, err := newKey()
	if err != nil {
		return tls.Certificate{}, err
	}
	der, err := selfSigned(key, "camd", mdnsHost, "camd.local", "localhost")
	if err != nil {
		return tls.Certificate{}, err
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return tls.Certificate{}, err
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := durable.WriteFile(keyPath, keyPEM, 0o600); err != nil {
		return tls.Certificate{}, err
	}
	if err := durable.WriteFile(certPath, certPEM, 0o644); err != nil {
		return tls.Certificate{}, err
	}
	return tls.X509KeyPair(certPEM, keyPEM)
}

// loadOrCreateDTLS keeps the WebRTC certificate across restarts: making
// one per connection costs time to first frame, and a stable fingerprint
// lets a paired phone recognise the device.
func loadOrCreateDTLS(path string) (*webrtc.Certificate, error) {
	if b, err := os.ReadFile(path); err == nil {
		c, err := webrtc.CertificateFromPEM(string(b))
		if err == nil && c.Expires().After(time.Now().Add(24*time.Hour)) {
			return c, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("device: %w", err)
	}
	key, err := newKey()
	if err != nil {
		return nil, err
	}
	der, err := selfSigned(key, "camd-webrtc", "camd.local", "localhost")
	if err != nil {
		return nil, err
	}
	x, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	c := webrtc.CertificateFromX509(key, x)
	p, err := c.PEM()
	if err != nil {
		return nil, err
	}
	if err := durable.WriteFile(path, []byte(p), 0o600); err != nil {
		return nil, err
	}
	return &c, nil
}

func atomicTemps(path string) string { return durable.Temps(path) }
