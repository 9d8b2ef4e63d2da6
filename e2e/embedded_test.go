package e2e

import (
	"bufio"
	"debug/elf"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The ARM builds are made once per test run (cgo cross builds take a
// while; the Go build cache makes the second and later runs quick).
var (
	crossOnce sync.Once
	crossDir  string
	crossErr  error
)

const crossVersion = "e2e-cross"

func crossBuild(t *testing.T) string {
	t.Helper()
	crossOnce.Do(func() {
		// Inside TestMain's directory: removed when the tests end.
		crossDir = filepath.Join(bin, "cross")
		cmd := exec.Command("../scripts/cross.sh", "-o", crossDir, "linux-arm64", "linux-armv7")
		cmd.Env = append(os.Environ(), "VERSION="+crossVersion)
		out, err := cmd.CombinedOutput()
		if err != nil {
			crossErr = err
			crossDir = string(out)
		}
	})
	if crossErr != nil {
		t.Fatalf("scripts/cross.sh: %v\n%s", crossErr, crossDir)
	}
	return crossDir
}

// startCommand runs a camd command line (perhaps under an emulator) on a
// free loopback port and waits until it serves. Unlike startDaemon it does
// not pair: the smoke runs need only /health.
func startCommand(t *testing.T, argv ...string) *daemon {
	t.Helper()
	d := &daemon{t: t, data: t.TempDir(), done: make(chan error, 1)}
	cfg := filepath.Join(d.data, "camd.yaml")
	// A small picture: the software encoder runs emulated.
	os.WriteFile(cfg, []byte("video: {width: 320, height: 240, fps: 10, bitrate: 300000, min_bitrate: 100000}\n"), 0o644)
	argv = append(argv, "run", "--config", cfg, "--data", d.data, "--listen", "127.0.0.1:0", "--log-level", "debug")
	d.cmd = exec.Command(argv[0], argv[1:]...)
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
	case <-time.After(90 * time.Second):
		t.Fatalf("camd did not start serving\n%s", d.log())
	}
	return d
}

// TestARMBinariesRunUnderQEMU is the smoke run of the embedded builds:
// the arm64 and armv7 binaries (with the cgo codecs) start on the
// synthetic camera under qemu-user, serve /health with the stamped
// version, encode, and stop cleanly on SIGTERM.
func TestARMBinariesRunUnderQEMU(t *testing.T) {
	cases := []struct {
		target, qemu, sysroot, cc string
		machine                   elf.Machine
	}{
		{"linux-arm64", "qemu-aarch64-static", "/usr/aarch64-linux-gnu", "aarch64-linux-gnu-gcc", elf.EM_AARCH64},
		{"linux-armv7", "qemu-arm-static", "/usr/arm-linux-gnueabihf", "arm-linux-gnueabihf-gcc", elf.EM_ARM},
	}
	for _, c := range cases {
		t.Run(c.target, func(t *testing.T) {
			need(t, c.qemu, c.cc, strings.Replace(c.cc, "-gcc", "-g++", 1))
			bin := filepath.Join(crossBuild(t), c.target, "camd")
			f, err := elf.Open(bin)
			if err != nil {
				t.Fatal(err)
			}
			if f.Machine != c.machine {
				t.Fatalf("%s is built for %v", bin, f.Machine)
			}
			if f.Section(".symtab") != nil {
				t.Errorf("%s is not stripped", bin)
			}
			f.Close()

			d := startCommand(t, c.qemu, "-L", c.sysroot, bin)
			resp, err := insecureClient().Get("https://" + d.addr + "/health")
			if err != nil {
				t.Fatal(err)
			}
			var h map[string]any
			json.NewDecoder(resp.Body).Decode(&h)
			resp.Body.Close()
			if h["status"] != "ok" || h["version"] != crossVersion {
				t.Fatalf("health: %v", h)
			}
			waitLog(t, d, `msg="media: source started" source=synthetic`)
			// The encoder really runs: no restart of the source for a
			// second or two of frames.
			time.Sleep(2 * time.Second)
			if strings.Contains(d.log(), "source failed") {
				t.Fatal("the synthetic source failed under emulation")
			}
			d.stop()
			if !strings.Contains(d.log(), "camd: stopped") {
				t.Fatal("no clean stop")
			}
		})
	}
}

// TestBusyBoxInitScript runs packaging/S90camd under BusyBox's shell: it
// starts camd, restarts it after a crash, and stops it.
func TestBusyBoxInitScript(t *testing.T) {
	need(t, "busybox")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "camd.yaml")
	data := filepath.Join(dir, "data")
	os.WriteFile(cfg, []byte("listen: 127.0.0.1:0\ndata: "+data+"\nsource: passthrough\npassthrough: {fifo: "+
		filepath.Join(dir, "video.fifo")+"}\n"), 0o644)
	pidfile := filepath.Join(dir, "camd.pid")
	script := func(arg string) string {
		cmd := exec.Command("busybox", "sh", "../packaging/S90camd", arg)
		cmd.Env = append(os.Environ(), "CAMD="+filepath.Join(bin, "camd"), "CAMD_CONFIG="+cfg,
			"CAMD_PIDFILE="+pidfile, "CAMD_RESTART_PAUSE=0.2", "CAMD_NO_SYSLOG=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("S90camd %s: %v\n%s", arg, err, out)
		}
		return string(out)
	}
	// camd's own process, found through its control socket's owner.
	camdPID := func() string {
		out, _ := exec.Command("pgrep", "-f", "camd run .*--config "+cfg).Output()
		return strings.TrimSpace(string(out))
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("never: %s", what)
			}
		}
	}
	if out := script("start"); !strings.Contains(out, "Starting camd: OK") {
		t.Fatalf("start printed %q", out)
	}
	t.Cleanup(func() { script("stop") })
	waitFor("camd running", func() bool { return camdPID() != "" && fileExists(filepath.Join(data, "camd.sock")) })
	first := camdPID()
	if strings.Contains(first, "\n") {
		t.Fatalf("several camd: %q", first)
	}

	// A crash: the supervisor starts camd again.
	exec.Command("kill", "-KILL", first).Run()
	waitFor("camd restarted", func() bool { p := camdPID(); return p != "" && p != first })

	script("stop")
	waitFor("camd stopped", func() bool { return camdPID() == "" })
	if fileExists(pidfile) {
		t.Fatal("pid file left behind")
	}
}

// TestBootHonoursAutoStart: with the owner's auto start off, the init
// scripts' `camd run --boot` exits at once, successfully.
func TestBootHonoursAutoStart(t *testing.T) {
	d := startDaemon(t)
	ctx := t.Context()
	if _, err := camctl(t, ctx, "settings", "set", "--store", d.store, "auto_start=off"); err != nil {
		t.Fatal(err)
	}
	d.stop()
	out, err := exec.Command(filepath.Join(bin, "camd"), "run", "--boot", "--data", d.data, "--listen", "127.0.0.1:0").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "auto start is off") {
		t.Fatalf("camd run --boot: %v\n%s", err, out)
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
