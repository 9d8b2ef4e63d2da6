package privatefile_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/camd-project/camd/internal/privatefile"
)

func ExampleWrite() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "credentials.json")
	if err := privatefile.Write(path, []byte(`{"token": "..."}`)); err != nil {
		fmt.Println(err)
		return
	}
	fi, _ := os.Stat(path)
	fmt.Println(fi.Mode().Perm())
	// Output: -rw-------
}
