package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestStorageVerbs: `camctl storage status` shows the card as the status
// route says it is, `check` prints what the check did, and `format`
// sends the confirmation only with the card's device named.
func TestStorageVerbs(t *testing.T) {
	const statusJSON = `{"paused": "storage read-only", "volumes": 12, "total_bytes": 1, "card": {"present": true, "mounted": true,
		"read_only": true, "mount_point": "/mnt/sd", "device": "/dev/mmcblk1p1", "fs_type": "vfat", "total_bytes": 31914983424,
		"free_bytes": 1073741824, "camd_bytes": 28991029248, "others_bytes": 1850212352, "error": "card: /mnt/sd is read-only: read-only file system"}}`
	var posted []string
	checkOutcome := "repaired"
	cam := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Header.Get("Authorization") != "Bearer t":
			w.WriteHeader(http.StatusUnauthorized)
		case r.Method == "GET" && r.URL.Path == "/api/v1/recordings/status":
			w.Write([]byte(statusJSON))
		case r.Method == "POST" && r.URL.Path == "/api/v1/storage/check":
			posted = append(posted, "check")
			w.Write([]byte(`{"device": "/dev/mmcblk1p1", "fs_type": "vfat", "command": ["fsck.vfat", "-a", "/dev/mmcblk1p1"], "exit_code": 1,
				"output": "Free cluster summary wrong (1 vs. really 2)\n", "outcome": "` + checkOutcome + `", "unmounted": true, "mounted": true, "seconds": 2.5}`))
		case r.Method == "POST" && r.URL.Path == "/api/v1/storage/format":
			var body map[string]string
			json.NewDecoder(r.Body).Decode(&body)
			posted = append(posted, "format: "+body["confirm"])
			w.Write([]byte(`{"device": "/dev/mmcblk1p1", "fs_type": "vfat", "command": ["mkfs.vfat", "-F", "32", "/dev/mmcblk1p1"],
				"outcome": "formatted", "unmounted": true, "mounted": true}`))
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer cam.Close()
	storePath := pairedWith(t, cam)

	code, out, errOut := camctlRun(storePath, "storage", "status")
	for _, want := range []string{"card         in, mounted, read-only", "device       /dev/mmcblk1p1 (vfat) at /mnt/sd",
		"camd's recordings 27648.0 MiB, other files 1764.5 MiB", "recording    paused: storage read-only (12 volumes)", "read-only file system"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("status lacks %q: %d %s%s", want, code, out, errOut)
		}
	}
	code, out, _ = camctlRun(storePath, "storage", "check")
	if code != 0 || !strings.Contains(out, "/dev/mmcblk1p1: repaired (fsck.vfat -a /dev/mmcblk1p1 exited 1") ||
		!strings.Contains(out, "Free cluster summary wrong") || !strings.Contains(out, "mounted again (vfat)") {
		t.Errorf("check: %d %s", code, out)
	}
	// A check that leaves errors is said, and camctl exits 1.
	checkOutcome = "errors left"
	code, _, errOut = camctlRun(storePath, "storage", "check")
	if code != 1 || !strings.Contains(errOut, "camctl storage check: /dev/mmcblk1p1: errors left") {
		t.Errorf("a check that left errors: %d %s", code, errOut)
	}
	for _, args := range [][]string{{"storage", "repair"}, {"storage", "status", "extra"}} {
		if code, _, errOut := camctlRun(storePath, args...); code != 2 || !strings.Contains(errOut, "usage:") {
			t.Errorf("%v: %d %s", args, code, errOut)
		}
	}
	for _, args := range [][]string{{"storage", "format"}, {"storage", "format", "--card", "/dev/sda1"}} {
		if code, _, errOut := camctlRun(storePath, args...); code != 2 || !strings.Contains(errOut, "--card /dev/mmcblk1p1") {
			t.Errorf("%v: %d %s", args, code, errOut)
		}
	}
	code, out, _ = camctlRun(storePath, "storage", "format", "--card", "/dev/mmcblk1p1")
	if code != 0 || !strings.Contains(out, "formatted") {
		t.Errorf("format: %d %s", code, out)
	}
	if strings.Join(posted, "; ") != "check; check; format: format /dev/mmcblk1p1" {
		t.Errorf("posted %q", posted)
	}
}
