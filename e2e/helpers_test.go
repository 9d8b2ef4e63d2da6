package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/camd-project/camd/internal/testenv"
)

var bin string // directory holding the built camd and camctl

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "camd-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = dir
	for _, c := range []string{"camd", "camctl"} {
		out, err := exec.Command("go", "build", "-o", filepath.Join(dir, c), "../cmd/"+c).CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "building %s: %v\n%s", c, err, out)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// daemon is a running camd process.
type daemon struct {
	t           testing.TB
	cmd         *exec.Cmd
	addr        string
	fingerprint string
	data        string
	// store is camctl's credentials file, paired as the owner.
	store string

	mu   sync.Mutex
	logs strings.Builder
	done chan error
}

var servingLine = regexp.MustCompile(`msg="camd: serving" addr=https://([^/]+)/ .* tls_sha256=([0-9a-f]{64})`)

// startDaemon runs camd with the given extra arguments, on a fresh data
// directory and a free loopback port, waits until it serves and pairs
// camctl with it as the owner.
func startDaemon(t testing.TB, args ...string) *daemon {
	t.Helper()
	return startAt(t, t.TempDir(), "", args...)
}

// startAt runs camd on the data directory data (restarts keep the
// recordings and the credential), on a free loopback port, and waits until
// it serves. With store "" it pairs camctl as the owner; otherwise store is
// camctl's credentials file from an earlier pairing.
func startAt(t testing.TB, data, store string, args ...string) *daemon {
	t.Helper()
	d := &daemon{t: t, data: data, store: store}
	d.start(t, exec.Command(filepath.Join(bin, "camd"), runArgs(data, "127.0.0.1:0", args...)...), 30*time.Second)
	if store == "" {
		d.pair(t)
	}
	return d
}

// runArgs is the command line of `camd run` on the data directory data,
// listening on listen and logging at debug level, followed by args.
func runArgs(data, listen string, args ...string) []string {
	return append([]string{"run", "--data", data, "--listen", listen, "--log-level", "debug"}, args...)
}

// start runs cmd, a `camd run` command line (perhaps in a namespace or
// under an emulator), and waits up to wait until camd serves. It keeps
// camd's log, shows it if the test fails, and kills camd when the test
// ends. startDaemon, startAt, startInNetns and startCommand share it.
func (d *daemon) start(t testing.TB, cmd *exec.Cmd, wait time.Duration) {
	t.Helper()
	d.cmd, d.done = cmd, make(chan error, 1)
	stderr, err := d.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	go func() {
		var once sync.Once
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			d.mu.Lock()
			d.logs.WriteString(line + "\n")
			if m := servingLine.FindStringSubmatch(line); m != nil {
				d.addr, d.fingerprint = m[1], m[2]
				once.Do(func() { close(ready) })
			}
			d.mu.Unlock()
		}
		io.Copy(io.Discard, stderr)
		d.done <- d.cmd.Wait()
	}()
	t.Cleanup(func() {
		if d.cmd.ProcessState == nil {
			d.cmd.Process.Kill()
			<-d.done
		}
		if t.Failed() {
			t.Logf("camd log:\n%s", d.log())
		}
	})
	select {
	case <-ready:
	case err := <-d.done:
		t.Fatalf("camd exited before serving: %v\n%s", err, d.log())
	case <-time.After(wait):
		t.Fatalf("camd did not start serving\n%s", d.log())
	}
}

// pair shows the pairing code through the control socket (camd qr) and
// pairs camctl with it, as the owner would from the device's screen.
func (d *daemon) pair(t testing.TB) {
	t.Helper()
	out, err := exec.Command(filepath.Join(bin, "camd"), "qr", "--data", d.data).CombinedOutput()
	if err != nil {
		t.Fatalf("camd qr: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	payload := lines[len(lines)-1]
	if !strings.HasPrefix(payload, "CAMD1:") {
		t.Fatalf("camd qr printed no payload:\n%s", out)
	}
	d.store = filepath.Join(t.TempDir(), "credentials.json")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := camctl(t, ctx, "pair", "--store", d.store, "--name", "e2e", payload); err != nil {
		t.Fatal(err)
	}
}

// token is the owner's credential from camctl's store.
func (d *daemon) token(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(d.store)
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Devices map[string]struct {
			Token string `json:"token"`
		} `json:"devices"`
	}
	json.Unmarshal(b, &s)
	for _, c := range s.Devices {
		return c.Token
	}
	t.Fatal("no credential in camctl's store")
	return ""
}

// inviteLink makes a viewer invitation link for a browser.
func (d *daemon) inviteLink(t testing.TB) string {
	t.Helper()
	return d.invite(t, "https://")
}

// invite makes a viewer invitation with camctl and returns the line of
// its answer that starts with prefix (the link, or the CAMD1 code).
func (d *daemon) invite(t testing.TB, prefix string) string {
	t.Helper()
	return invitation(t, "", d.store, prefix)
}

// viewOptions lets a benchmark view with the owner's credential.
func (d *daemon) viewHeader(t testing.TB) http.Header {
	return http.Header{"Authorization": {"Bearer " + d.token(t)}}
}

func (d *daemon) log() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.logs.String()
}

// stop sends SIGTERM and waits for a clean exit.
func (d *daemon) stop() {
	d.t.Helper()
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.done:
		if err != nil {
			d.t.Fatalf("camd exited with %v after SIGTERM", err)
		}
	case <-time.After(10 * time.Second):
		d.t.Fatal("camd did not stop within 10 s of SIGTERM")
	}
}

// camctl runs camctl and returns its stdout.
func camctl(t testing.TB, ctx context.Context, args ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "camctl"), args...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("camctl %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String(), err
}

// need skips the test when a tool that .ci/run installs is missing, so
// that `go test ./...` still runs on a bare host, and fails it with
// CAMD_REQUIRE_TOOLS set (`make test` installs them).
func need(t testing.TB, tools ...string) {
	t.Helper()
	testenv.Tools(t, tools...)
}

// ffprobe returns ffprobe's csv output for the given entries.
func ffprobe(t testing.TB, file string, args ...string) string {
	t.Helper()
	all := append([]string{"-v", "error"}, args...)
	out, err := exec.Command("ffprobe", append(all, file)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe %s: %v\n%s", file, err, out)
	}
	return strings.TrimSpace(string(out))
}

// waitLog waits until camd's log contains s.
func waitLog(t testing.TB, d *daemon, s string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(d.log(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("camd never logged %q", s)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// insecureClient trusts camd's self-signed certificate (tests only). It
// closes its connection after each request: a test makes many clients
// from one address, more than camd lets one address keep open
// (http.max_connections_per_address).
func insecureClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true},
		Timeout:   10 * time.Second,
	}
}

// health checks that camd answers GET /health.
func health(t testing.TB, d *daemon) {
	t.Helper()
	resp, err := insecureClient().Get("https://" + d.addr + "/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("health: %s", resp.Status)
	}
}
