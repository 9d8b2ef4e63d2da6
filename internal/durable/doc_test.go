package durable_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/camd-project/camd/internal/durable"
)

func ExampleWriteFile() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "credentials.json")
	if err := durable.WriteFile(path, []byte(`{"token": "..."}`), 0o600); err != nil {
		fmt.Println(err)
		return
	}
	fi, _ := os.Stat(path)
	fmt.Println(fi.Mode().Perm())
	// Output: -rw-------
}
