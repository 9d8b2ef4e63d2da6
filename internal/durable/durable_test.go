package durable

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWriteIsPrivateEvenOverAPublicFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "invite.png")
	// An earlier file of the same name, readable by everyone: os.WriteFile
	// would keep its mode.
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
	}
	if b, _ := os.ReadFile(path); string(b) != "secret" {
		t.Fatalf("content %q", b)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("left %d files behind, want only the one written", len(ents))
	}
}

func TestWriteIntoAMissingDirectoryFails(t *testing.T) {
	if err := WriteFile(filepath.Join(t.TempDir(), "no", "such", "f"), []byte("x"), 0o600); err == nil {
		t.Fatal("no error")
	}
}
