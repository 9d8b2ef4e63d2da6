package main

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/camd-project/camd/device/pairing"
)

func TestRunRefusesBadConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "camd.yaml")
	os.WriteFile(cfg, []byte("video: {fps: 500}\n"), 0o600)
	var out, errb strings.Builder
	code := run([]string{"run", "--config", cfg, "--data", filepath.Join(dir, "data")}, &out, &errb)
	if code != 2 || !strings.Contains(errb.String(), "video.fps: 500 is not allowed (allowed: 1 to 60)") {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "data")); err == nil {
		t.Fatal("a refused config still created the data directory")
	}
}

func TestFlagsOverrideConfig(t *testing.T) {
	var out, errb strings.Builder
	code := run([]string{"run", "--listen", "not-an-address"}, &out, &errb)
	if code != 2 || !strings.Contains(errb.String(), `listen: "not-an-address" is not allowed`) {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
}

func TestUsage(t *testing.T) {
	var out, errb strings.Builder
	if code := run(nil, &out, &errb); code != 2 || !strings.Contains(errb.String(), "camd run") {
		t.Fatalf("no args: %d %q", code, errb.String())
	}
	if code := run([]string{"fly"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), `unknown command "fly"`) {
		t.Fatalf("unknown command: %d", code)
	}
	if code := run([]string{"version"}, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "camd ") {
		t.Fatalf("version: %d %q", code, out.String())
	}
}

// TestFactoryResetReadsTheConfig: with no camd running, `camd
// factory-reset --config` erases the data directory named in the
// configuration and the recording volumes where recording.path puts
// them (a card), as `camd run` would find them; files that are not
// camd's stay.
func TestFactoryResetReadsTheConfig(t *testing.T) {
	dir := t.TempDir()
	data, card := filepath.Join(dir, "data"), filepath.Join(dir, "card")
	cfg := filepath.Join(dir, "camd.yaml")
	os.WriteFile(cfg, []byte("data: "+data+"\nrecording: {path: "+card+"}\n"), 0o600)
	files := map[string]bool{ // erased?
		filepath.Join(data, "catalog.db"):                  true,
		filepath.Join(data, "tls.key"):                     true,
		filepath.Join(data, "snapshots.db"):                true,
		filepath.Join(card, "vol-0000000000000001.db"):     true,
		filepath.Join(card, "quarantine", "vol-x.db.2025"): true,
		filepath.Join(data, "notes.txt"):                   false,
		filepath.Join(card, "someone-elses.mp4"):           false,
	}
	for f := range files {
		os.MkdirAll(filepath.Dir(f), 0o700)
		os.WriteFile(f, []byte("x"), 0o600)
	}
	var out, errb strings.Builder
	if code := run([]string{"factory-reset", "--config", cfg}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "--yes") {
		t.Fatalf("without --yes: %d %q", code, errb.String())
	}
	if code := run([]string{"factory-reset", "--config", cfg, "--yes"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for f, erased := range files {
		if _, err := os.Stat(f); (err == nil) == erased {
			t.Errorf("%s: erased %v, want %v", f, err != nil, erased)
		}
	}
}

// TestSetupQRIsTheAppLink: the pairing QR code shown on the device opens
// the web app's pairing screen, the code in the fragment, when the code
// names the camera's address; the text under it says what is true (no
// "camd app", which does not exist) and ends with the code for camctl.
func TestSetupQRIsTheAppLink(t *testing.T) {
	p := pairing.Payload{Kind: pairing.Setup, Role: pairing.Owner, Host: netip.MustParseAddrPort("192.168.1.20:8443")}
	code := p.String()
	link := setupQR(code)
	if link != "https://192.168.1.20:8443/#pair="+code {
		t.Errorf("QR %q", link)
	}
	if back, err := pairing.Parse(link); err != nil || back != p {
		t.Errorf("the link reads back as %+v, %v", back, err)
	}
	if hint := scanHint(code); !strings.Contains(hint, "phone's camera") || !strings.Contains(hint, link) || strings.Contains(hint, "camd app") {
		t.Errorf("hint %q", hint)
	}
	p.Host = netip.AddrPort{}
	if bare := p.String(); setupQR(bare) != bare || strings.Contains(scanHint(bare), "camd app") {
		t.Errorf("without an address: QR %q, hint %q", setupQR(bare), scanHint(bare))
	}
}
