package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestRecordingsVerbs: `camctl recordings` lists the timeline the route
// gives, deletes only with --before or --all, exports only with --out,
// triggers motion with the flags given, and says the camera's refusal.
func TestRecordingsVerbs(t *testing.T) {
	var asked []string
	cam := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer t" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		asked = append(asked, r.Method+" "+r.URL.RequestURI())
		switch {
		case r.Method == "GET" && r.URL.Path == "/api/v1/recordings":
			w.Write([]byte(`{"spans": [{"start": "2026-12-07T10:00:00Z", "end": "2026-12-07T10:05:00Z"}],
				"status": {"volumes": 3, "bytes": 1048576, "quota_bytes": 10485760, "recorder": {"mode": "continuous"}}}`))
		case r.Method == "DELETE" && r.URL.Path == "/api/v1/recordings":
			w.Write([]byte(`{"volumes_deleted": 2}`))
		case r.Method == "POST" && r.URL.Path == "/api/v1/motion":
			w.WriteHeader(http.StatusNoContent)
		default:
			w.WriteHeader(http.StatusForbidden)
			w.Write([]byte(`{"error": "owner only"}`))
		}
	}))
	defer cam.Close()
	store := pairedWith(t, cam)

	code, out, errOut := camctlRun(store, "recordings", "list", "--from", "-10m")
	if code != 0 || !strings.Contains(out, "5m0s") || !strings.Contains(out, "mode continuous, 3 volumes, 1.0 MiB of 10.0 MiB quota") {
		t.Errorf("list: %d %s%s", code, out, errOut)
	}
	if code, out, _ = camctlRun(store, "recordings", "delete", "--before", "-1h"); code != 0 || !strings.Contains(out, "2 volumes deleted") {
		t.Errorf("delete: %d %s", code, out)
	}
	if code, out, _ = camctlRun(store, "recordings", "trigger", "--seconds", "5", "--cause", "door"); code != 0 || !strings.Contains(out, "motion triggered") {
		t.Errorf("trigger: %d %s", code, out)
	}
	for _, args := range [][]string{{"recordings", "delete"}, {"recordings", "export"}, {"recordings", "bogus"}, {"recordings", "list", "extra"}} {
		if code, _, errOut := camctlRun(store, args...); code != 2 || !strings.Contains(errOut, "usage:") {
			t.Errorf("%v: %d %s", args, code, errOut)
		}
	}
	// The camera's refusal is said, after the command.
	if code, _, errOut := camctlRun(store, "recordings", "status"); code != 1 || !strings.Contains(errOut, "camctl recordings status:") || !strings.Contains(errOut, "owner only") {
		t.Errorf("status refused: %d %s", code, errOut)
	}
	want := "GET /api/v1/recordings?from=-10m&to=now; DELETE /api/v1/recordings?before=-1h; POST /api/v1/motion; GET /api/v1/recordings/status"
	if got := strings.Join(asked, "; "); got != want {
		t.Errorf("asked %s\nwant  %s", got, want)
	}
}
