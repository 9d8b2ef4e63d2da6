package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// TestCamerasVerbs: add sends the code, add-rtsp the URL and credentials,
// list shows the cameras, set and remove name the camera, remove
// --delete-recordings asks for it.
func TestCamerasVerbs(t *testing.T) {
	var mu sync.Mutex
	var bodies []map[string]any
	var paths []string
	cam := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		paths = append(paths, r.Method+" "+r.URL.RequestURI())
		var body map[string]any
		json.NewDecoder(r.Body).Decode(&body)
		bodies = append(bodies, body)
		one := `{"id": "cam-1", "name": "porch", "kind": "rtsp", "address": "rtsp://10.0.0.5/live", "state": "connecting"}`
		switch {
		case r.Header.Get("Authorization") != "Bearer t":
			w.WriteHeader(http.StatusUnauthorized)
		case r.Method == "POST" && r.URL.Path == "/api/v1/cameras":
			if body["code"] == "CAMD1:WRONG" {
				w.WriteHeader(http.StatusUnprocessableEntity)
				w.Write([]byte(`{"error": "nvr: camera refused the credentials: 401"}`))
				return
			}
			w.WriteHeader(http.StatusCreated)
			w.Write([]byte(one))
		case r.Method == "GET" && r.URL.Path == "/api/v1/cameras":
			w.Write([]byte(`[` + one + `, {"id": "cam-2", "name": "gate", "kind": "camd", "state": "offline", "last_error": "nvr: no frame"}]`))
		case r.URL.Path == "/api/v1/cameras/cam-1":
			w.Write([]byte(one))
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer cam.Close()
	storePath := pairedWith(t, cam)

	if code, out, errOut := camctlRun(storePath, "cameras", "add", "--name", "gate", "CAMD1:GOOD"); code != 0 || !strings.Contains(out, "cam-1") {
		t.Errorf("add: %d %s%s", code, out, errOut)
	}
	if code, _, errOut := camctlRun(storePath, "cameras", "add", "CAMD1:WRONG"); code != 1 || !strings.Contains(errOut, "refused") {
		t.Errorf("add a wrong code: %d %s", code, errOut)
	}
	if code, _, errOut := camctlRun(storePath, "cameras", "add-rtsp", "--user", "u", "--password", "p", "rtsp://10.0.0.5/live"); code != 0 {
		t.Errorf("add-rtsp: %d %s", code, errOut)
	}
	if code, _, errOut := camctlRun(storePath, "cameras", "add-onvif", "--user", "k", "--password", "s", "10.0.0.6:80"); code != 0 {
		t.Errorf("add-onvif: %d %s", code, errOut)
	}
	code, out, _ := camctlRun(storePath, "cameras", "list")
	if code != 0 || !strings.Contains(out, "cam-2") || !strings.Contains(out, "offline") || !strings.Contains(out, "nvr: no frame") {
		t.Errorf("list: %d %s", code, out)
	}
	if code, _, errOut := camctlRun(storePath, "cameras", "set", "--recording", "off", "cam-1"); code != 0 {
		t.Errorf("set: %d %s", code, errOut)
	}
	if code, _, errOut := camctlRun(storePath, "cameras", "remove", "--delete-recordings", "cam-1"); code != 0 {
		t.Errorf("remove: %d %s", code, errOut)
	}
	if code, _, _ := camctlRun(storePath, "cameras", "remove"); code != 2 {
		t.Errorf("remove without an ID: %d", code)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"POST /api/v1/cameras", "POST /api/v1/cameras", "POST /api/v1/cameras", "POST /api/v1/cameras", "GET /api/v1/cameras",
		"PATCH /api/v1/cameras/cam-1", "DELETE /api/v1/cameras/cam-1?recordings=delete"}
	if strings.Join(paths, ",") != strings.Join(want, ",") {
		t.Fatalf("requests: %q", paths)
	}
	if bodies[0]["code"] != "CAMD1:GOOD" || bodies[0]["name"] != "gate" || bodies[2]["rtsp"] != "rtsp://10.0.0.5/live" ||
		bodies[2]["user"] != "u" || bodies[2]["password"] != "p" || bodies[3]["onvif"] != "10.0.0.6:80" || bodies[3]["user"] != "k" ||
		bodies[5]["recording"] != "off" {
		t.Fatalf("bodies: %v", bodies)
	}
}
