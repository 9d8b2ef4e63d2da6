package device

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/camd-project/camd/discovery"
)

func TestIdentityPersistsWithPrivatePermissions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	a, err := LoadIdentity(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadIdentity(dir)
	if err != nil {
		t.Fatal(err)
	}
	if a.ID != b.ID || a.Fingerprint != b.Fingerprint {
		t.Fatal("identity changed across loads")
	}
	fa, _ := a.DTLS.GetFingerprints()
	fb, _ := b.DTLS.GetFingerprints()
	if len(fa) == 0 || fa[0] != fb[0] {
		t.Fatal("DTLS certificate changed across loads")
	}
	if len(a.ID) < 16 || len(a.Fingerprint) != 64 {
		t.Fatalf("id %q fingerprint %q", a.ID, a.Fingerprint)
	}
	for _, f := range []string{idFile, tlsKey, dtlsFile} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", f, fi.Mode().Perm())
		}
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Errorf("data dir mode %v", fi.Mode().Perm())
	}
	// Another data directory is another device.
	c, err := LoadIdentity(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if c.ID == a.ID || c.Fingerprint == a.Fingerprint {
		t.Fatal("two devices share an identity")
	}
}

func TestDamagedTLSKeyIsAClearError(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadIdentity(dir); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, tlsKey), []byte("garbage"), 0o600)
	if _, err := LoadIdentity(dir); err == nil {
		t.Fatal("a damaged key was accepted")
	}
}

// TestCertificateNamesTheMDNSHost: a client that reached camd through
// mDNS (camd-xxxxxxxx.local) finds that name in the certificate; it still
// pins the fingerprint, since nobody signed it.
func TestCertificateNamesTheMDNSHost(t *testing.T) {
	id, err := LoadIdentity(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(id.TLS.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	host := discovery.HostName(id.ID)
	if !strings.HasPrefix(host, "camd-") || !strings.HasSuffix(host, ".local") {
		t.Fatalf("mDNS host %q", host)
	}
	for _, name := range []string{host, "camd.local", "localhost"} {
		if err := cert.VerifyHostname(name); err != nil {
			t.Errorf("certificate for %v: %v", cert.DNSNames, err)
		}
	}
}
