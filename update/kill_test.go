package update_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/camd-project/camd/internal/testenv"
	"github.com/camd-project/camd/update"
	"github.com/camd-project/camd/update/updatetest"
)

// The child's side of TestKill9ResumesDownload: an updater on the
// parent's directory and feed that checks and applies, until killed.
func TestKill9Child(t *testing.T) {
	env := os.Getenv("CAMD_UPDATE_CHILD")
	if env == "" {
		t.Skip("run by TestKill9ResumesDownload")
	}
	f := strings.Split(env, "\n") // feed URL, key, CA file, dir, version
	keys, err := update.ParseKeys(f[1])
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, err := os.ReadFile(f[2])
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pemBytes)
	u, err := update.New(update.Options{
		FeedURL: f[0], Keys: keys, Dir: f[3], Version: f[4],
		Client:         &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}},
		InstallCommand: []string{"false"},
	})
	if err != nil {
		t.Fatal(err)
	}
	u.SetEnabled(true)
	if _, err := u.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := u.Apply(u.Status().Available.Version); err != nil {
		t.Fatal(err)
	}
	u.Run(context.Background()) // until killed
}

// kill -9 in the middle of a download: the next apply asks the server
// for the rest only (HTTP Range) and installs a whole, verified image.
func TestKill9ResumesDownload(t *testing.T) {
	r := newRig(t)
	const size, at = 3 << 20, 1<<20 + 12345
	img := updatetest.Image("1.1.0", size)
	r.feed.Publish(updatetest.Manifest("1.1.0", 1, img), img)
	release := r.feed.HoldAt(at)
	defer release()

	ca := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: r.feed.Server.Certificate().Raw}), 0o644)
	child := exec.Command(os.Args[0], "-test.run=^TestKill9Child$", "-test.v")
	child.Env = append(os.Environ(), "CAMD_UPDATE_CHILD="+strings.Join([]string{r.feed.URL(), r.feed.Key.String(), ca, r.dir, "1.0.0"}, "\n"))
	out := &strings.Builder{}
	child.Stdout, child.Stderr = out, out
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- child.Wait() }()
	// The child has written everything the server sent before it held.
	testenv.Eventually(t, "the child's partial download", func() bool {
		select {
		case err := <-exited:
			t.Fatalf("child exited: %v\n%s", err, out)
		default:
		}
		m, _ := filepath.Glob(filepath.Join(r.dir, "image-*"))
		if len(m) != 1 {
			return false
		}
		fi, err := os.Stat(m[0])
		return err == nil && fi.Size() == at
	})
	child.Process.Signal(syscall.SIGKILL)
	if err := <-exited; err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("child: %v", err)
	}
	release()

	u := r.updater(t)
	run(t, u)
	if _, err := u.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := u.Apply("1.1.0"); err != nil {
		t.Fatal(err)
	}
	r.events.wait(t, update.EventRebooting)
	testenv.Eventually(t, "the reboot", func() bool { return r.ab.Reboots() == 1 })
	if r.ab.Version() != "1.1.0" {
		t.Fatalf("booted %s", r.ab.Version())
	}
	reqs := r.feed.Requests()
	if !contains(reqs, "GET /image") || !contains(reqs, "GET /image bytes=1060921-") {
		t.Fatalf("requests: %v (want the whole image, then from byte %d)", reqs, at)
	}
}
