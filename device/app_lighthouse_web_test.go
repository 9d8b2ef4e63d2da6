package device

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/camd-project/camd/internal/testenv"
)

// TestAppLighthouse: Lighthouse (npm, the version scripts/interop-tools.sh
// pins) audits the app before pairing and, paired as the owner, each
// screen: accessibility and best practices score 0.90 or more on each.
// Chromium trusts camd's own key by its SPKI pin, as a phone that
// accepted the certificate once does, and no other certificate error,
// so that best practices judge the page as served.
//
// Not under the race detector: the audit judges the page, which the
// detector does not change, and it would add a minute and a half to make
// race; the other app tests drive the same handlers there.
func TestAppLighthouse(t *testing.T) {
	if testenv.Race {
		t.Skip("Lighthouse judges the page; make unit runs it without the race detector")
	}
	chromium := testenv.Tool(t, "chromium")
	node := testenv.Tool(t, "node")
	lh := testenv.Interop(t, "lighthouse") // …/node_modules/.bin/lighthouse
	modules := filepath.Dir(filepath.Dir(lh))
	script, _ := filepath.Abs("testdata/lighthouse.mjs")

	d := running(t, syntheticSource)
	ownerToken := owner(t, d)
	viewer(t, d, ownerToken)
	cert, err := x509.ParseCertificate(d.Identity().TLS.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	pin := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	// The screens in order, each with what shows it has loaded (as in
	// TestAppFitsPhone).
	ready, _ := json.Marshal([][2]string{
		{"live", `camd.framesDecoded > 0`},
		{"timeline", `document.querySelector("#recStatus").textContent !== ""`},
		{"events", `camdShell.events === "open"`},
		{"settings", `camdSettings.loaded`},
		{"users", `camdUsers.users.length === 2 && camdKeys.loads > 0`},
		{"snapshots", `camdSnapshots.loaded`},
		{"device", `camdDevice.loaded`},
	})

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, node, script, modules, chromium, "https://"+d.Addr().String()+"/", ownerToken,
		base64.StdEncoding.EncodeToString(pin[:]), string(ready))
	// Node and the Chromium it starts in a group of their own: a test
	// that times out kills both.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var res struct {
		Error string
		Steps []struct {
			Name     string
			Mode     string
			Warnings []string
			Scores   map[string]*float64
			Failed   []struct {
				ID, Title string
				Score     float64
				Nodes     []string
			}
		}
	}
	if jerr := json.Unmarshal(out, &res); jerr != nil || res.Error != "" || err != nil {
		t.Fatalf("lighthouse: %v %s\n%s\nstderr: %s", err, res.Error, out, stderr.String())
	}
	t.Logf("Lighthouse, %d steps in %s:", len(res.Steps), time.Since(start).Round(time.Second))
	if len(res.Steps) != 8 {
		t.Errorf("%d steps, want 8 (before pairing and the 7 screens)", len(res.Steps))
	}
	for _, s := range res.Steps {
		var line []string
		for _, cat := range []string{"accessibility", "best-practices"} {
			score := s.Scores[cat]
			switch {
			case score == nil:
				t.Errorf("%s: no %s score", s.Name, cat)
			case *score < 0.9:
				t.Errorf("%s: %s %.2f, want ≥ 0.90", s.Name, cat, *score)
			}
			if score != nil {
				line = append(line, fmt.Sprintf("%s %.2f", cat, *score))
			}
		}
		t.Logf("  %-15s %-10s %s", s.Name, s.Mode, strings.Join(line, ", "))
		for _, w := range s.Warnings {
			t.Logf("    warning: %s", w)
		}
		for _, f := range s.Failed {
			t.Logf("    %s (%s): %.2f %q", f.ID, f.Title, f.Score, f.Nodes)
		}
	}
}
