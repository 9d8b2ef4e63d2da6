package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestWiFiVerbs: join sends the passphrase read from a file (never an
// argument) and prints the status; a failed join says why; scan prints
// what is in range with an SSID's control characters made harmless.
func TestWiFiVerbs(t *testing.T) {
	var mu sync.Mutex
	var joins []map[string]any
	cam := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case r.Header.Get("Authorization") != "Bearer t":
			w.WriteHeader(http.StatusUnauthorized)
		case r.Method == "GET" && r.URL.Path == "/api/v1/network/wifi/scan":
			w.Write([]byte(`[{"ssid": "home", "signal_dbm": -48, "channel": 6, "security": "psk"}, {"ssid": "evil\u001b[2J", "signal_dbm": -70, "channel": 11, "security": "open"}, {"ssid": "\ufffd", "ssid_hex": "ff", "signal_dbm": -80, "channel": 1, "security": "sae"}]`))
		case r.Method == "GET" && r.URL.Path == "/api/v1/network/wifi/setup":
			w.Write([]byte(`{"ssid": "camd-setup-4449", "passphrase": "hlbmtntmbxmdvllro6nm", "open": false}`))
		case r.Method == "POST" && r.URL.Path == "/api/v1/network/wifi":
			var body map[string]any
			json.NewDecoder(r.Body).Decode(&body)
			joins = append(joins, body)
			if body["passphrase"] != "the passphrase" {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnprocessableEntity)
				w.Write([]byte(`{"error": "network: wrong password", "reason": "wrong_key", "status": {"state": "connected", "ssid": "old", "saved": true}}`))
				return
			}
			w.Write([]byte(`{"state": "connected", "ssid": "home", "security": "psk", "signal_dbm": -48, "channel": 6, "address": "192.168.1.20", "saved": true}`))
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer cam.Close()
	storePath := pairedWith(t, cam)
	pass := filepath.Join(t.TempDir(), "pass")
	os.WriteFile(pass, []byte("the passphrase\n"), 0o600)

	code, out, errOut := camctlRun(storePath, "wifi", "join", "--passphrase-file", pass, "home")
	if code != 0 || !strings.Contains(out, "network      home (psk)") || !strings.Contains(out, "address      192.168.1.20") {
		t.Fatalf("join: %d %s%s", code, out, errOut)
	}
	os.WriteFile(pass, []byte("wrong passphrase\n"), 0o600)
	if code, _, errOut := camctlRun(storePath, "wifi", "join", "--passphrase-file", pass, "home"); code != 1 || !strings.Contains(errOut, "wrong password") {
		t.Errorf("failed join: %d %s", code, errOut)
	}
	if code, _, _ := camctlRun(storePath, "wifi", "join", "--passphrase-file", pass, "hex:ff00"); code != 0 && code != 1 {
		t.Errorf("hex join: %d", code)
	}
	mu.Lock()
	if len(joins) != 3 || joins[0]["ssid"] != "home" || joins[2]["ssid_hex"] != "ff00" {
		t.Errorf("joins: %v", joins)
	}
	mu.Unlock()

	code, out, errOut = camctlRun(storePath, "wifi", "scan")
	if code != 0 || !strings.Contains(out, "home") || !strings.Contains(out, "hex:ff") || strings.Contains(out, "\x1b") {
		t.Errorf("scan: %d %q %s", code, out, errOut)
	}
	code, out, errOut = camctlRun(storePath, "wifi", "setup")
	if code != 0 || !strings.Contains(out, "access point camd-setup-4449 (WPA2, opens in setup mode)") || !strings.Contains(out, "passphrase   hlbmtntmbxmdvllro6nm") {
		t.Errorf("setup: %d %q %s", code, out, errOut)
	}
	if code, _, _ := camctlRun(storePath, "wifi", "join"); code != 2 {
		t.Errorf("join without an SSID: %d", code)
	}
}
