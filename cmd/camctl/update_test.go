package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// TestUpdateVerbs: status shows the offer with its notes and size; check
// says why a feed was refused; apply sends the version offered, refuses
// another, and follows the download until the reboot.
func TestUpdateVerbs(t *testing.T) {
	var mu sync.Mutex
	var applied []string
	gets := 0
	cam := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case r.Header.Get("Authorization") != "Bearer t":
			w.WriteHeader(http.StatusUnauthorized)
		case r.Method == "GET" && r.URL.Path == "/api/v1/update":
			gets++
			if len(applied) > 0 {
				w.Write([]byte(`{"enabled": true, "version": "1.0.0", "state": "rebooting", "pending": {"version": "1.1.0", "from": "1.0.0"}}`))
				return
			}
			w.Write([]byte(`{"enabled": true, "version": "1.0.0", "state": "idle", "last_check": "2026-12-07T06:00:00Z",
				"available": {"version": "1.1.0", "notes": "Fixes the night mode.\nFaster pairing.", "size": 31457280, "expires": "2026-12-14T00:00:00Z"}}`))
		case r.Method == "POST" && r.URL.Path == "/api/v1/update/check":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadGateway)
			w.Write([]byte(`{"error": "update: feed expired: at 2026-12-01T00:00:00Z", "reason": "expired"}`))
		case r.Method == "POST" && r.URL.Path == "/api/v1/update/apply":
			var body map[string]string
			json.NewDecoder(r.Body).Decode(&body)
			applied = append(applied, body["version"])
			w.WriteHeader(http.StatusAccepted)
			w.Write([]byte(`{"enabled": true, "version": "1.0.0", "state": "downloading", "progress": {"done": 0, "total": 31457280}}`))
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer cam.Close()
	storePath := pairedWith(t, cam)

	code, out, errOut := camctlRun(storePath, "update", "status")
	for _, want := range []string{"version      1.0.0", "checking     on", "available    1.1.0 (30.0 MiB): camctl update apply 1.1.0",
		"  Fixes the night mode.", "  Faster pairing."} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("status lacks %q: %d %s%s", want, code, out, errOut)
		}
	}
	if code, _, errOut := camctlRun(storePath, "update", "check"); code != 1 || !strings.Contains(errOut, "feed expired") {
		t.Errorf("check: %d %s", code, errOut)
	}
	if code, _, errOut := camctlRun(storePath, "update", "apply", "1.2.0"); code != 1 || !strings.Contains(errOut, "1.1.0 is offered, not 1.2.0") {
		t.Errorf("apply 1.2.0: %d %s", code, errOut)
	}
	code, out, errOut = camctlRun(storePath, "update", "apply", "1.1.0")
	if code != 0 || !strings.Contains(out, "applying 1.1.0 (30.0 MiB) over 1.0.0") || !strings.Contains(out, "downloading 0.0 MiB of 30.0 MiB") ||
		!strings.Contains(out, "installed 1.1.0; the camera reboots") {
		t.Errorf("apply: %d %s%s", code, out, errOut)
	}
	if len(applied) != 1 || applied[0] != "1.1.0" {
		t.Fatalf("applied %v", applied)
	}
	for _, args := range [][]string{{"update", "bogus"}, {"update", "apply", "1.1.0", "1.2.0"}, {"update", "status", "1.1.0"}} {
		if code, _, errOut := camctlRun(storePath, args...); code != 2 || !strings.Contains(errOut, "usage") {
			t.Errorf("%v: %d %s", args, code, errOut)
		}
	}
}
