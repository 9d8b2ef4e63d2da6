package api

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/camd-project/camd/device/pairing"
	"github.com/camd-project/camd/storage"
)

// FuzzPairingRoutes sends anything to the public pairing routes, as a
// stranger on the LAN can, through the real pairing manager: no input
// pairs (a nonce is sealed by the device, a proof needs the secret),
// none is a server error, and none writes to the catalog (it cannot
// count against pairing's limits or wear the flash).
func FuzzPairingRoutes(f *testing.F) {
	f.Add(false, []byte(`{}`), "application/json")
	f.Add(false, []byte(`{"invite_id": "0011223344556677"}`), "application/json")
	f.Add(true, []byte(`{"nonce": "AAAA", "name": "mallory", "proof": "AAAA"}`), "application/json")
	f.Add(true, []byte(`{"nonce": null, "name": "\u202eevil", "proof": "", "invite_id": "x"}`), "application/json; charset=utf-8")
	f.Add(true, []byte(`{"name": "a", "name": "b"}`), "text/plain")
	f.Add(true, []byte(`[1, 2`), "application/json")

	catalog := filepath.Join(f.TempDir(), "catalog.db")
	cat, err := storage.OpenCatalog(catalog, storage.CatalogOptions{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { cat.Close() })
	m, err := pairing.Open(cat, pairing.Options{DeviceID: "AAAQEAYEAUDAOCAJ"})
	if err != nil {
		f.Fatal(err)
	}
	routes := (&Pairing{Exchange: m, Window: m, DeviceID: "AAAQEAYEAUDAOCAJ"}).routes()
	before, err := os.ReadFile(catalog)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, finish bool, body []byte, contentType string) {
		route := "/api/v1/pair/start"
		if finish {
			route = "/api/v1/pair/finish"
		}
		w := do(t, routes, request{method: "POST", path: route, body: string(body), header: map[string]string{"Content-Type": contentType}})
		switch {
		case w.Code == 201:
			t.Fatalf("%s %q paired", route, body)
		case w.Code >= 500:
			t.Fatalf("%s %q: %d %s", route, body, w.Code, w.Body)
		}
		after, err := os.ReadFile(catalog)
		if err != nil || !bytes.Equal(after, before) {
			t.Fatalf("%s %q wrote to the catalog (%v)", route, body, err)
		}
	})
}
