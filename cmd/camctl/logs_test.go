package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// TestLogsFollow: logs prints the newest lines, and --follow asks for
// what comes after the last line seen, waiting on the camera.
func TestLogsFollow(t *testing.T) {
	var mu sync.Mutex
	var queries []string
	cam := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer t" || r.URL.Path != "/api/v1/logs" {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		queries = append(queries, r.URL.RawQuery)
		switch r.URL.Query().Get("after") {
		case "":
			w.Write([]byte(`{"entries": [{"seq": 1, "time": "2026-12-07T06:00:00Z", "level": "INFO", "msg": "camd: serving", "addr": "https://x/"},
				{"seq": 2, "time": "2026-12-07T06:00:01Z", "level": "WARN", "msg": "two", "n": 2}], "next": 2}`))
		case "2":
			w.Write([]byte(`{"entries": [{"seq": 3, "time": "2026-12-07T06:00:02Z", "level": "ERROR", "msg": "three"}], "next": 3}`))
		default:
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(`{"error": "logring: closed"}`))
		}
	}))
	defer cam.Close()
	storePath := pairedWith(t, cam)

	logs := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := run(append([]string{"logs", "--store", storePath}, args...), &out, &errOut)
		return code, out.String(), errOut.String()
	}
	code, out, errOut := logs("--level", "warn")
	if code != 0 || !strings.Contains(out, `INFO  camd: serving addr="https://x/"`) || !strings.Contains(out, "WARN  two n=2") {
		t.Fatalf("logs: %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = logs("--follow", "--json")
	if code != 1 || !strings.Contains(out, `"msg": "three"`) || !strings.Contains(errOut, "logring: closed") {
		t.Fatalf("logs --follow: %d\n%s%s", code, out, errOut)
	}
	mu.Lock()
	defer mu.Unlock()
	if q := queries[len(queries)-2]; !strings.Contains(q, "after=2") || !strings.Contains(q, "wait=25s") {
		t.Errorf("follow asked %q", q)
	}
	if !strings.Contains(queries[0], "level=warn") {
		t.Errorf("logs asked %q", queries[0])
	}
}

func TestCrashesVerbs(t *testing.T) {
	var mu sync.Mutex
	var calls []string
	cam := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, r.Method+" "+r.URL.Path)
		switch r.Method + " " + r.URL.Path {
		case "GET /api/v1/crashes":
			w.Write([]byte(`{"crashes": [{"id": "c1", "time": "2026-12-07T06:00:00Z", "version": "1.0.0", "uptime_ns": 61000000000}]}`))
		case "GET /api/v1/crashes/c1":
			w.Write([]byte(`{"id": "c1", "version": "1.0.0", "trace": "panic: boom", "log": [{"seq": 1, "level": "INFO", "msg": "before"}]}`))
		case "POST /api/v1/crashes/c1/send":
			w.Write([]byte(`{"id": "c1", "sent": "2026-12-07T06:01:00Z"}`))
		case "DELETE /api/v1/crashes/c1":
			w.WriteHeader(http.StatusNoContent)
		default:
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"error": "crash: no such report"}`))
		}
	}))
	defer cam.Close()
	storePath := pairedWith(t, cam)
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"crashes", "list"}, 0, "c1  "},
		{[]string{"crashes", "show", "c1"}, 0, "panic: boom"},
		{[]string{"crashes", "send", "c1"}, 0, "sent c1"},
		{[]string{"crashes", "delete", "c1"}, 0, "deleted c1"},
		{[]string{"crashes", "show", "nope"}, 1, "no such report"},
		{[]string{"crashes", "send"}, 2, "usage"},
	} {
		code, out, errOut := camctlRun(storePath, c.args...)
		if code != c.code || !strings.Contains(out+errOut, c.want) {
			t.Errorf("%v: %d\n%s%s", c.args, code, out, errOut)
		}
	}
}
