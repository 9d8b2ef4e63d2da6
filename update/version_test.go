package update

import (
	"errors"
	"strings"
	"testing"
)

func TestCompareVersions(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"1.0.0", "1.0.0", 0}, {"v1.0.0", "1.0.0", 0}, {"1.0", "1.0.0", 0},
		{"1.0.1", "1.0.0", 1}, {"1.10.0", "1.9.9", 1}, {"2.0.0", "10.0.0", -1},
		{"1.0.0-rc1", "1.0.0", -1}, {"1.0.0-rc2", "1.0.0-rc1", 1},
		{"dev", "0.0.1", -1}, {"0.0.1", "dev", 1}, {"dev", "", 0},
	} {
		if got := compareVersions(c.a, c.b); got != c.want {
			t.Errorf("compare(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
	for _, bad := range []string{"", "1.2.3.4", "1.x", "01.2.3", "-1.0.0", "1..2"} {
		if _, err := parseVersion(bad); !errors.Is(err, ErrManifest) {
			t.Errorf("parseVersion(%q): %v, want ErrManifest", bad, err)
		}
	}
}

func TestParseKeys(t *testing.T) {
	const pub = "untrusted comment: minisign public key: 3728470A8118E56E\nRWRu5RiBCkcoN+Z3MtdUMxDG03t+BBNBoDgLfpBaRoISeivG8PSMIUuf\n"
	keys, err := ParseKeys("# a comment\n" + pub + ",RWRu5RiBCkcoN+Z3MtdUMxDG03t+BBNBoDgLfpBaRoISeivG8PSMIUuf")
	if err != nil || len(keys) != 2 {
		t.Fatalf("ParseKeys: %d keys, %v", len(keys), err)
	}
	if _, err := ParseKeys("RWnotakey"); err == nil {
		t.Fatal("a bad key parsed")
	}
	if keys, err := ParseKeys(embeddedKeys); err != nil || len(keys) != 0 {
		t.Fatalf("the project ships keys/trusted.pub empty: %d keys, %v", len(keys), err)
	}
}

// TrustedKeys are the build's: the -X BuildKeys given to the linker, or
// keys/trusted.pub (empty in the project's tree). Run with
// -ldflags "-X github.com/camd-project/camd/update.BuildKeys=RWQ…" to
// check a build's keys.
func TestTrustedKeys(t *testing.T) {
	keys, err := TrustedKeys()
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	if BuildKeys != "" {
		want = len(strings.Split(BuildKeys, ","))
	}
	if len(keys) != want {
		t.Fatalf("%d keys, want %d (BuildKeys %q)", len(keys), want, BuildKeys)
	}
}
