package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWriteProfiles: both profiles land under the prefix, whole (no
// .tmp left); a prefix in a missing directory is an error naming the
// profile, and writes nothing.
func TestWriteProfiles(t *testing.T) {
	prefix := filepath.Join(t.TempDir(), "camd")
	if err := writeProfiles(prefix); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"heap", "goroutine"} {
		if st, err := os.Stat(prefix + "." + name); err != nil || st.Size() == 0 {
			t.Errorf("%s profile: %v", name, err)
		}
		if _, err := os.Stat(prefix + "." + name + ".tmp"); err == nil {
			t.Errorf("%s: the temporary file was left", name)
		}
	}
	if g, _ := os.ReadFile(prefix + ".goroutine"); !strings.Contains(string(g), "goroutine profile:") {
		t.Errorf("goroutine profile: %.80q", g)
	}
	err := writeProfiles(filepath.Join(t.TempDir(), "missing", "camd"))
	if err == nil || !strings.HasPrefix(err.Error(), "heap: ") {
		t.Errorf("a missing directory: %v", err)
	}
}
