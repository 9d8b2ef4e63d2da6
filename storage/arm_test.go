package storage_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/camd-project/camd/internal/testenv"
)

// TestStorageOnARM32 runs the storage tests again as a linux/arm (32-bit,
// ARMv7) binary under qemu-arm: bbolt's files are memory-mapped, and a
// 32-bit address space is where sizes and mappings go wrong first. The
// packages are pure Go, so no cross compiler is needed.
func TestStorageOnARM32(t *testing.T) {
	if os.Getenv("CAMD_UNDER_QEMU") != "" {
		t.Skip("already under qemu")
	}
	if testing.Short() {
		t.Skip("cross-compiles and emulates: not in -short")
	}
	testenv.Tools(t, "qemu-arm-static", "go")
	bin := t.TempDir()
	for _, pkg := range []string{".", "volume", "recordings", "eventlog", "snapshots"} {
		t.Run(pkg, func(t *testing.T) {
			exe := filepath.Join(bin, strings.ReplaceAll(pkg, ".", "storage")+".test")
			build := exec.Command("go", "test", "-c", "-o", exe, "./"+pkg)
			build.Env = append(os.Environ(), "GOOS=linux", "GOARCH=arm", "GOARM=7", "CGO_ENABLED=0")
			if out, err := build.CombinedOutput(); err != nil {
				t.Fatalf("go test -c for linux/arm: %v\n%s", err, out)
			}
			run := exec.Command("qemu-arm-static", exe, "-test.short", "-test.count=1", "-test.v")
			run.Dir = pkg
			run.Env = append(os.Environ(), "CAMD_UNDER_QEMU=1")
			out, err := run.CombinedOutput()
			if err != nil {
				t.Fatalf("under qemu-arm: %v\n%s", err, out)
			}
			passed := strings.Count(string(out), "--- PASS")
			t.Logf("linux/arm under qemu-arm: %d tests passed, %d skipped", passed, strings.Count(string(out), "--- SKIP"))
			if passed == 0 {
				t.Fatalf("nothing ran:\n%s", out)
			}
		})
	}
}
