package e2e

import (
	"debug/elf"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/camd-project/camd/storage"
	"github.com/camd-project/camd/storage/recordings"
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
		cmd := exec.Command("../scripts/cross.sh", "-o", crossDir)
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

// startCommand runs a camd command line (perhaps under an emulator) with
// the given configuration on a free loopback port and waits until it
// serves. Unlike startDaemon it does not pair: the smoke runs need only
// /health.
func startCommand(t *testing.T, config string, argv ...string) *daemon {
	t.Helper()
	d := &daemon{t: t, data: t.TempDir()}
	cfg := filepath.Join(d.data, "camd.yaml")
	os.WriteFile(cfg, []byte(config), 0o644)
	argv = append(argv, runArgs(d.data, "127.0.0.1:0", "--config", cfg)...)
	d.start(t, exec.Command(argv[0], argv[1:]...), 90*time.Second)
	return d
}

// smokeRun is what each embedded build must do under qemu-user: be built
// for its machine and stripped, start with config, serve /health with the
// stamped version, run its source (started is its log line) for a few
// seconds without a restart, stop cleanly on SIGTERM, and leave at least
// 2 s of recording whole on disk.
func smokeRun(t *testing.T, bin string, machine elf.Machine, config, started string, emulator ...string) {
	t.Helper()
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	if f.Machine != machine {
		t.Fatalf("%s is built for %v", bin, f.Machine)
	}
	if f.Section(".symtab") != nil {
		t.Errorf("%s is not stripped", bin)
	}
	f.Close()

	d := startCommand(t, config, append(emulator, bin)...)
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
	waitLog(t, d, started)
	// The source really runs, and records: no restart of the source for
	// a few seconds of frames.
	time.Sleep(4 * time.Second)
	if strings.Contains(d.log(), "source failed") {
		t.Fatal("the source failed under emulation")
	}
	stopped := time.Now()
	d.stop()
	if !strings.Contains(d.log(), "camd: stopped") {
		t.Fatal("no clean stop")
	}
	// What the emulated binary recorded is on disk, whole, in its catalog
	// and volumes.
	recorded := recordedTime(t, d.data, stopped)
	if recorded < 2*time.Second {
		t.Fatalf("%s recorded %v in 4 s", bin, recorded)
	}
	t.Logf("%s recorded %v", bin, recorded)
}

// qemuSysroot are qemu-user's arguments that run a dynamically linked
// binary on the cross compiler's C library in sysroot. Its library path
// is given too: with Debian's multiarch packages of the target installed
// (libspeexdsp-dev:arm64 brings libc6:arm64, for make cross), the host's
// /etc/ld.so.cache lists the target's libraries under /lib/TRIPLET, and
// a program whose loader comes from sysroot and libc from there hung at
// start.
func qemuSysroot(sysroot string) []string {
	return []string{"-L", sysroot, "-E", "LD_LIBRARY_PATH=" + filepath.Join(sysroot, "lib")}
}

// TestARMBinariesRunUnderQEMU is the smoke run of the embedded builds with
// the cgo codecs: the arm64, armv7 and armv7-lean binaries start on the
// synthetic camera under qemu-user and encode.
func TestARMBinariesRunUnderQEMU(t *testing.T) {
	cases := []struct {
		target, qemu, sysroot, cc string
		machine                   elf.Machine
	}{
		{"linux-arm64", "qemu-aarch64-static", "/usr/aarch64-linux-gnu", "aarch64-linux-gnu-gcc", elf.EM_AARCH64},
		{"linux-armv7", "qemu-arm-static", "/usr/arm-linux-gnueabihf", "arm-linux-gnueabihf-gcc", elf.EM_ARM},
		{"linux-armv7-lean", "qemu-arm-static", "/usr/arm-linux-gnueabihf", "arm-linux-gnueabihf-gcc", elf.EM_ARM},
	}
	// A small picture: the software encoder runs emulated.
	config := "video: {width: 320, height: 240, fps: 10, bitrate: 300000, min_bitrate: 100000}\n"
	for _, c := range cases {
		t.Run(c.target, func(t *testing.T) {
			need(t, c.qemu, c.cc, strings.Replace(c.cc, "-gcc", "-g++", 1))
			smokeRun(t, filepath.Join(crossBuild(t), c.target, "camd"), c.machine, config,
				`msg="media: source started" source=synthetic`, append([]string{c.qemu}, qemuSysroot(c.sysroot)...)...)
		})
	}
}

// TestPassthroughBuildsRunUnderQEMU is the smoke run of the CGO-free
// builds a camera SoC with a hardware encoder ships: the armv6 and mipsle
// (soft float) binaries, static, read an H.264 stream under qemu-user and
// record it.
func TestPassthroughBuildsRunUnderQEMU(t *testing.T) {
	need(t, "ffmpeg")
	file := fixture(t, t.TempDir(), "320x240", 15, 4, 15, "300k", "baseline")
	config := "source: passthrough\npassthrough: {file: " + file + ", loop: true}\n"
	for _, c := range []struct {
		target, qemu string
		machine      elf.Machine
	}{
		{"linux-armv6", "qemu-arm-static", elf.EM_ARM},
		{"linux-mipsle", "qemu-mipsel-static", elf.EM_MIPS},
	} {
		t.Run(c.target, func(t *testing.T) {
			need(t, c.qemu)
			smokeRun(t, filepath.Join(crossBuild(t), c.target, "camd"), c.machine, config,
				`msg="media: source started" source=file:`, c.qemu)
		})
	}
}

// sizeBudgets are the largest stripped binaries make cross may produce,
// in bytes (docs/porting.md, "Size"): a change that grows a build past its
// budget fails here, and either finds the bytes or moves the budget with
// its reason in the docs.
var sizeBudgets = map[string]int64{
	"linux-arm64":      24_300_000,
	"linux-armv7":      24_300_000,
	"linux-armv7-lean": 18_500_000,
	"linux-armv6":      17_800_000,
	"linux-mipsle":     20_300_000,
}

// TestEmbeddedSizes holds every embedded build to its size budget.
func TestEmbeddedSizes(t *testing.T) {
	need(t, "aarch64-linux-gnu-gcc", "arm-linux-gnueabihf-gcc")
	dir := crossBuild(t)
	for target, budget := range sizeBudgets {
		fi, err := os.Stat(filepath.Join(dir, target, "camd"))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > budget {
			t.Errorf("%s is %d bytes, over its budget of %d", target, fi.Size(), budget)
		}
		t.Logf("%s: %d bytes (budget %d)", target, fi.Size(), budget)
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

// recordedTime opens a stopped camd's catalog and recordings and returns
// how much was recorded before until; the catalog's consistency is
// checked on the way.
func recordedTime(t *testing.T, data string, until time.Time) time.Duration {
	t.Helper()
	cat, err := storage.OpenCatalog(filepath.Join(data, "catalog.db"), storage.CatalogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	if cat.Quarantined != "" {
		t.Fatalf("the catalog was damaged: %s", cat.Quarantined)
	}
	rs, err := recordings.Open(cat, recordings.Options{Dir: filepath.Join(data, "recordings")})
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	tl, err := rs.Timeline(1, until.Add(-time.Hour), until)
	if err != nil {
		t.Fatal(err)
	}
	var total time.Duration
	for _, sp := range tl.Spans {
		total += sp.End.Sub(sp.Start)
	}
	return total
}
