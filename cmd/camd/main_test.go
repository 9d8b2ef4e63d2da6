package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
