package e2e

import (
	"context"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"

	"github.com/camd-project/camd/internal/testenv"
)

func camd(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(filepath.Join(bin, "camd"), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("camd %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestQRCodePNGDecodes renders the pairing code as a PNG (the sticker
// printed at the factory) and reads it back with an independent decoder.
func TestQRCodePNGDecodes(t *testing.T) {
	d := startDaemon(t)
	lines := strings.Split(strings.TrimSpace(camd(t, "qr", "--data", d.data)), "\n")
	payload := lines[len(lines)-1]
	file := filepath.Join(t.TempDir(), "sticker.png")
	camd(t, "qr", "--data", d.data, "--png", file)
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if fi, _ := f.Stat(); fi.Mode().Perm() != 0o600 {
		t.Errorf("the PNG holds a secret but has mode %v", fi.Mode().Perm())
	}
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	bmp, _ := gozxing.NewBinaryBitmapFromImage(img)
	res, err := qrcode.NewQRCodeReader().Decode(bmp, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.GetText() != payload {
		t.Fatalf("QR holds %q, camd qr printed %q", res.GetText(), payload)
	}
	// The secret changed when camctl paired at start; the code shown now
	// is the new one and the log never shows it.
	if strings.Contains(d.log(), payload) {
		t.Fatal("the pairing code appears in the log")
	}
}

// TestFactoryResetMakesANewDevice resets through the control socket: camd
// erases its keys and users and comes back as a new device, so the old
// credential (pinned to the old certificate) no longer connects.
func TestFactoryResetMakesANewDevice(t *testing.T) {
	d := startDaemon(t)
	oldFP := d.fingerprint
	if out := camd(t, "factory-reset", "--data", d.data, "--yes"); !strings.Contains(out, "factory reset") {
		t.Fatalf("factory-reset printed %q", out)
	}
	waitLog(t, d, "factory reset done")
	deadline := time.Now().Add(15 * time.Second)
	for strings.Count(d.log(), `msg="camd: serving"`) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("camd did not come back after the reset")
		}
		time.Sleep(50 * time.Millisecond)
	}
	m := servingLine.FindAllStringSubmatch(d.log(), -1)
	if newFP := m[len(m)-1][2]; newFP == oldFP {
		t.Fatal("the certificate survived the factory reset")
	}
	d.addr = m[len(m)-1][1] // port 0 in tests: the new daemon has a new port
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := camctl(t, ctx, "view", "--store", d.store, "--addr", d.addr, "--seconds", "1"); err == nil || !strings.Contains(err.Error(), "pinned fingerprint") {
		t.Fatalf("old credential after reset: %v", err)
	}
	// Pairing is open again, for a new owner.
	d.pair(t)
	if _, err := camctl(t, ctx, "users", "list", "--store", d.store); err != nil {
		t.Fatal(err)
	}
	d.stop()
}

func TestControlSocketIsPrivate(t *testing.T) {
	d := startDaemon(t)
	fi, err := os.Stat(filepath.Join(d.data, "camd.sock"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("control socket mode %v", fi.Mode().Perm())
	}
	// Another user is refused even if the file mode were wrong; run the
	// client as nobody when we are root.
	testenv.Root(t, "running a client as another user")
	testenv.Tool(t, "setpriv")
	os.Chmod(filepath.Join(d.data, "camd.sock"), 0o666)
	os.Chmod(d.data, 0o755)
	cmd := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", filepath.Join(bin, "camd"), "qr", "--data", d.data)
	out, err := cmd.CombinedOutput()
	if err == nil || strings.Contains(string(out), "CAMD1:") {
		t.Fatalf("another user read the pairing code: %s", out)
	}
}
