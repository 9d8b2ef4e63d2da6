package update

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"aead.dev/minisign"
)

// fuzzKey is a fixed key: the seeds signed with it verify in every run.
func fuzzKey(t testing.TB) (minisign.PublicKey, minisign.PrivateKey) {
	pub, priv, err := minisign.GenerateKey(bytes.NewReader(make([]byte, 64)))
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

// FuzzVerifyFeed: any feed document and signature, whatever their bytes,
// are refused or give a manifest that holds what the checks need; a
// verified document with one byte changed is refused.
func FuzzVerifyFeed(f *testing.F) {
	pub, priv := fuzzKey(f)
	doc, _ := json.Marshal(Manifest{
		Product: "camd", Serial: 3, Version: "1.2.3", Issued: time.Unix(1e9, 0).UTC(), Expires: time.Unix(2e9, 0).UTC(),
		Image: Image{URL: "image", Size: 10, SHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
	})
	f.Add(doc, minisign.Sign(priv, doc))
	f.Add([]byte(`{"version": "x"}`), minisign.Sign(priv, []byte(`{"version": "x"}`)))
	f.Add([]byte("{}"), []byte("untrusted comment: x\nRUQ=\ntrusted comment: y\nAAAA\n"))
	f.Fuzz(func(t *testing.T, doc, sig []byte) {
		m, err := verifyFeed(doc, sig, []minisign.PublicKey{pub})
		if err != nil {
			if Reason(err) == "" {
				t.Fatalf("a refusal without a reason: %v", err)
			}
			return
		}
		if _, err := parseVersion(m.Version); err != nil || m.Image.Size <= 0 || m.Image.URL == "" || m.Expires.IsZero() {
			t.Fatalf("verified an incomplete manifest: %+v", m)
		}
		changed := bytes.Clone(doc)
		changed[len(changed)/2] ^= 1
		if _, err := verifyFeed(changed, sig, []minisign.PublicKey{pub}); err == nil {
			t.Fatal("a changed document verified")
		}
	})
}

// FuzzCompareVersions: the order is antisymmetric and reflexive for any
// two strings.
func FuzzCompareVersions(f *testing.F) {
	for _, s := range [][2]string{{"1.0.0", "1.0.1"}, {"v2.0.0-rc1", "2.0.0"}, {"dev", "0.0.1"}, {"1.2", "1.2.0"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if c, d := compareVersions(a, b), compareVersions(b, a); c != -d {
			t.Fatalf("compare(%q, %q) = %d, compare(%q, %q) = %d", a, b, c, b, a, d)
		}
		if compareVersions(a, a) != 0 {
			t.Fatalf("compare(%q, %q) != 0", a, a)
		}
	})
}
