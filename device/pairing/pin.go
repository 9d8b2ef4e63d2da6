package pairing

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"fmt"
)

// PinnedTLS trusts exactly one certificate: the one whose SHA-256 is
// fingerprint (what a pairing code carries). A different certificate
// fails the handshake, before any request, and any secret, is sent.
// camctl and an NVR reach cameras with it.
func PinnedTLS(fingerprint []byte) *tls.Config {
	want := bytes.Clone(fingerprint)
	return &tls.Config{
		InsecureSkipVerify: true, // replaced by the pin below
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 {
				return fmt.Errorf("pairing: the camera sent no certificate")
			}
			got := sha256.Sum256(raw[0])
			if !bytes.Equal(got[:], want) {
				return fmt.Errorf("pairing: camera certificate %x does not match the pinned fingerprint", got)
			}
			return nil
		},
	}
}
