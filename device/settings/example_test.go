package settings_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/camd-project/camd/device/settings"
	"github.com/camd-project/camd/storage"
)

func ExampleStore_Patch() {
	dir, _ := os.MkdirTemp("", "settings-example-")
	defer os.RemoveAll(dir)
	cat, err := storage.OpenCatalog(filepath.Join(dir, "catalog.db"), storage.CatalogOptions{})
	if err != nil {
		panic(err)
	}
	defer cat.Close()
	s, err := settings.Open(cat, settings.Options{})
	if err != nil {
		panic(err)
	}

	_, after, err := s.Patch(map[string]json.RawMessage{"mute": json.RawMessage("true"), "fps": json.RawMessage("15")})
	fmt.Println(after.Mute, after.FPS, err)

	_, _, err = s.Patch(map[string]json.RawMessage{"fps": json.RawMessage("500")})
	fmt.Println(err)
	// Output:
	// true 15 <nil>
	// settings: fps: 500 is not allowed (allowed: a whole number from 1 to 60)
}
