package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/camd-project/camd/device/api"
)

// TestCamerasDiscovered: the table lists camd and ONVIF cameras with how
// to reach them and whether they are paired; --json passes the answer
// on; --window reaches the NVR.
func TestCamerasDiscovered(t *testing.T) {
	var mu sync.Mutex
	var windows []string
	body := `{"cameras": [
		{"kind": "camd", "name": "Front Door", "model": "sim", "id": "FRONTFRONTFRONT1", "endpoint": "urn:uuid:x", "addrs": ["10.0.0.21", "fd00::21"], "port": 8443, "paired": false, "via": ["mdns", "ws-discovery"]},
		{"kind": "camd", "name": "Garage", "id": "GARAGEGARAGEGAR1", "addrs": ["10.0.0.22"], "port": 8443, "paired": true, "via": ["mdns"]},
		{"kind": "onvif", "name": "", "model": "IPC-G5", "endpoint": "urn:uuid:porch", "addrs": ["10.0.0.30"], "xaddrs": ["http://10.0.0.30/onvif/device_service"], "paired": null, "via": ["ws-discovery"]}],
		"interfaces": ["eth0"], "window_ms": 2001}`
	nvr := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer t" || r.URL.Path != "/api/v1/cameras/discovered" {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		mu.Lock()
		windows = append(windows, r.URL.Query().Get("window"))
		mu.Unlock()
		if r.URL.Query().Get("window") == "9s" {
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"error": "discovery: window is a duration from 500ms to 5s"}`))
			return
		}
		w.Write([]byte(body))
	}))
	defer nvr.Close()
	storePath := pairedWith(t, nvr)
	cameras := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := run(append([]string{"cameras", "discovered", "--store", storePath}, args...), &out, &errOut)
		return code, out.String(), errOut.String()
	}

	code, out, errOut := cameras()
	if code != 0 {
		t.Fatalf("cameras discovered: %d\n%s%s", code, out, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	want := [][]string{
		{"KIND", "NAME", "MODEL", "ADDRESS", "ID", "PAIRED", "VIA"},
		{"camd", "Front", "Door", "sim", "10.0.0.21:8443", "FRONTFRONTFRONT1", "no", "mdns+ws-discovery"},
		{"camd", "Garage", "-", "10.0.0.22:8443", "GARAGEGARAGEGAR1", "yes", "mdns"},
		{"onvif", "-", "IPC-G5", "http://10.0.0.30/onvif/device_service", "urn:uuid:porch", "-", "ws-discovery"},
	}
	if len(lines) != len(want) {
		t.Fatalf("table:\n%s", out)
	}
	for i, l := range lines {
		if got := strings.Fields(l); strings.Join(got, " ") != strings.Join(want[i], " ") {
			t.Errorf("line %d: %q, want %q", i, got, want[i])
		}
	}

	code, out, _ = cameras("--json", "--window", "3s")
	var ans api.DiscoveredAnswer
	if code != 0 || json.Unmarshal([]byte(out), &ans) != nil || len(ans.Cameras) != 3 || ans.Cameras[2].Paired != nil {
		t.Fatalf("--json: %d %s", code, out)
	}
	if code, _, errOut := cameras("--window", "9s"); code != 1 || !strings.Contains(errOut, "500ms to 5s") {
		t.Errorf("a refused window: %d %s", code, errOut)
	}
	mu.Lock()
	defer mu.Unlock()
	if windows[0] != "2s" || windows[1] != "3s" {
		t.Errorf("windows asked: %v", windows)
	}

	var buf bytes.Buffer
	printDiscovered(&buf, api.DiscoveredAnswer{NotSearched: "camd listens on loopback (127.0.0.1)"})
	if !strings.Contains(buf.String(), "did not search the LAN: camd listens on loopback") {
		t.Errorf("not searched: %s", buf.String())
	}
}
