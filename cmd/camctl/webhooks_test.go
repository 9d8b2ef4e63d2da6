package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// TestWebhooksVerbs: add sends the URL and types and prints the secret
// once; list shows the state; test fails on a receiver's error; remove
// deletes.
func TestWebhooksVerbs(t *testing.T) {
	var mu sync.Mutex
	var added map[string]any
	removed := ""
	cam := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case r.Header.Get("Authorization") != "Bearer t":
			w.WriteHeader(http.StatusUnauthorized)
		case r.Method == "POST" && r.URL.Path == "/api/v1/webhooks":
			json.NewDecoder(r.Body).Decode(&added)
			w.WriteHeader(http.StatusCreated)
			w.Write([]byte(`{"id": "wh_1", "url": "https://ha.example/hook", "secret": "whsec_c2VjcmV0", "created": "2026-12-07T08:00:00Z"}`))
		case r.Method == "GET" && r.URL.Path == "/api/v1/webhooks":
			w.Write([]byte(`[{"id": "wh_1", "url": "https://ha.example/hook", "types": ["motion"], "created": "2026-12-07T08:00:00Z", "queued": 3,
				"disabled": "2026-12-08T08:00:00Z", "disabled_reason": "failed since 2026-12-07T08:00:00Z: 503 Service Unavailable"}]`))
		case r.Method == "POST" && r.URL.Path == "/api/v1/webhooks/wh_1/test":
			w.Write([]byte(`{"id": "msg_test_1", "type": "webhook.test", "time": "2026-12-07T08:00:00Z", "attempt": 1, "status": 500, "error": "500 Internal Server Error", "outcome": "test", "duration_ms": 1.5}`))
		case r.Method == "DELETE" && r.URL.Path == "/api/v1/webhooks/wh_1":
			removed = "wh_1"
			w.WriteHeader(http.StatusNoContent)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer cam.Close()
	storePath := pairedWith(t, cam)

	code, out, errOut := camctlRun(storePath, "webhooks", "add", "--types", "motion,call.*", "https://ha.example/hook")
	if code != 0 || !strings.Contains(out, "secret: whsec_c2VjcmV0") || added["url"] != "https://ha.example/hook" || len(added["types"].([]any)) != 2 {
		t.Errorf("add: %d %s%s %v", code, out, errOut, added)
	}
	code, out, _ = camctlRun(storePath, "webhooks", "list")
	if code != 0 || !strings.Contains(out, "wh_1") || !strings.Contains(out, "disabled: failed since") || strings.Contains(out, "whsec_") {
		t.Errorf("list: %d %s", code, out)
	}
	code, out, _ = camctlRun(storePath, "webhooks", "test", "wh_1")
	if code != 1 || !strings.Contains(out, "500") {
		t.Errorf("test: %d %s", code, out)
	}
	if code, _, errOut := camctlRun(storePath, "webhooks", "remove", "wh_2"); code != 1 || !strings.Contains(errOut, "404") {
		t.Errorf("remove unknown: %d %s", code, errOut)
	}
	if code, _, _ := camctlRun(storePath, "webhooks", "remove", "wh_1"); code != 0 || removed != "wh_1" {
		t.Errorf("remove: %d", code)
	}
	if code, _, _ := camctlRun(storePath, "webhooks", "add"); code != 2 {
		t.Errorf("add without a URL: %d", code)
	}
}
