package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// RequireVar is the environment variable that turns skips into failures.
const RequireVar = "CAMD_REQUIRE_TOOLS"

// Required reports whether missing tools and privileges fail tests.
func Required() bool { return os.Getenv(RequireVar) != "" }

// Need skips tb unless ok, saying what is missing (format and args, as
// in fmt.Sprintf), or fails it when CAMD_REQUIRE_TOOLS is set.
func Need(tb testing.TB, ok bool, format string, args ...any) {
	tb.Helper()
	if ok {
		return
	}
	why := fmt.Sprintf(format, args...)
	if Required() {
		tb.Fatalf("%s (%s is set)", why, RequireVar)
	}
	tb.Skip(why)
}

// Tool returns the path of the named program, after Need: it skips or
// fails tb when the program is not on PATH.
func Tool(tb testing.TB, name string) string {
	tb.Helper()
	path, err := exec.LookPath(name)
	Need(tb, err == nil, "%s not installed (scripts/install-deps.sh installs it)", name)
	return path
}

// Tools is Tool for several programs.
func Tools(tb testing.TB, names ...string) {
	tb.Helper()
	for _, name := range names {
		Tool(tb, name)
	}
}

// Root skips or fails tb unless it runs as root; why says what needs it.
func Root(tb testing.TB, why string) {
	tb.Helper()
	Need(tb, os.Geteuid() == 0, "%s needs root", why)
}

// OpenFiles lists the files under dirs that this process holds open
// (from /proc/self/fd), after Need: without /proc it skips or fails tb.
func OpenFiles(tb testing.TB, dirs ...string) []string {
	tb.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	Need(tb, err == nil, "listing open files needs /proc: %v", err)
	var open []string
	for _, fd := range fds {
		to, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err != nil {
			continue
		}
		for _, dir := range dirs {
			if strings.HasPrefix(to, dir+string(filepath.Separator)) {
				open = append(open, to)
			}
		}
	}
	return open
}

// Interop returns the path of a tool that scripts/interop-tools.sh
// builds or installs into its cache (mediamtx, go2rtc, npm, onvif,
// lighthouse), doing so on first use, after Need: it skips or fails tb
// when the script cannot (no npm, no network on a first run).
func Interop(tb testing.TB, name string) string {
	tb.Helper()
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "..", "scripts", "interop-tools.sh")
	var stderr strings.Builder
	cmd := exec.Command(script, name)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	path := strings.TrimSpace(string(out))
	Need(tb, err == nil && path != "", "building %s for the interop tests: %v\n%s", name, err, stderr.String())
	return path
}
