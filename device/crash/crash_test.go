package crash

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/camd-project/camd/storage/eventlog"
)

type events []eventlog.Event

func (e *events) Add(ev eventlog.Event) (uint64, error) {
	*e = append(*e, ev)
	return uint64(len(*e)), nil
}

// crashed leaves a trace file as a run that started at started and
// crashed an hour later would.
func crashed(t *testing.T, dir string, started time.Time) {
	t.Helper()
	h, _ := json.Marshal(header{Version: "1.2.3", Started: started, PID: 42})
	path := filepath.Join(dir, TraceFile)
	if err := os.WriteFile(path, append(h, []byte("\nfatal error: concurrent map writes\n\ngoroutine 1 [running]:\n")...), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(path, started.Add(time.Hour), started.Add(time.Hour))
}

func TestOpenKeepsAReportPerMode(t *testing.T) {
	started := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for _, mode := range []string{Ask, Send, Never} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			crashed(t, dir, started)
			var ev events
			r, err := Open(Options{Dir: dir, Mode: mode, Version: "1.2.4", Events: &ev,
				LogBefore: func(n int) []json.RawMessage {
					return []json.RawMessage{json.RawMessage(`{"msg":"last words"}`)}
				}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(dir, TraceFile)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the trace file stays: %v", err)
			}
			list, _ := r.List()
			if mode == Never {
				if len(list) != 0 || len(ev) != 0 {
					t.Fatalf("never kept %v, events %v", list, ev)
				}
				return
			}
			if len(list) != 1 || len(ev) != 1 || ev[0].Kind != EventRecorded || ev[0].Data["crash_id"] != list[0].ID {
				t.Fatalf("reports %v, events %v", list, ev)
			}
			rep, err := r.Get(list[0].ID)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Version != "1.2.3" || rep.Uptime != time.Hour || !strings.Contains(rep.Trace, "concurrent map writes") ||
				len(rep.Log) != 1 {
				t.Fatalf("report %+v", rep)
			}
		})
	}
}

func TestCleanRunLeavesNoReport(t *testing.T) {
	dir := t.TempDir()
	r, err := Open(Options{Dir: dir, Version: "1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Arm(time.Now()); err != nil {
		t.Fatal(err)
	}
	r.Disarm()
	r, err = Open(Options{Dir: dir, Version: "1"})
	if err != nil {
		t.Fatal(err)
	}
	if list, _ := r.List(); len(list) != 0 {
		t.Fatalf("a clean run left %v", list)
	}
}

func TestSendOnlyWhenAsked(t *testing.T) {
	var uploads atomic.Int32
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Content-Type") != "application/json" {
			w.WriteHeader(http.StatusUnsupportedMediaType)
			return
		}
		uploads.Add(1)
	}))
	defer srv.Close()
	dir := t.TempDir()
	crashed(t, dir, time.Now().Add(-time.Hour))
	r, err := Open(Options{Dir: dir, Mode: Ask, URL: srv.URL, Client: srv.Client(), Version: "1"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r.Run(ctx, time.Millisecond) // ask: returns at once, sends nothing
	if uploads.Load() != 0 {
		t.Fatal("sent without the owner")
	}
	list, _ := r.List()
	rep, err := r.Send(context.Background(), list[0].ID)
	if err != nil || rep.Sent.IsZero() || uploads.Load() != 1 {
		t.Fatalf("send: %v %+v, %d uploads", err, rep, uploads.Load())
	}
	if list, _ := r.List(); list[0].Sent.IsZero() {
		t.Error("not marked sent")
	}
	for _, id := range []string{"../crash.trace", "a/b", "", "nope"} {
		if _, err := r.Get(id); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(%q) = %v", id, err)
		}
		if err := r.Delete(id); !errors.Is(err, ErrNotFound) {
			t.Errorf("Delete(%q) = %v", id, err)
		}
	}
	r.opts.URL = ""
	if _, err := r.Send(context.Background(), list[0].ID); !errors.Is(err, ErrNoURL) {
		t.Errorf("send without a collector: %v", err)
	}
}

// The owner changes the mode while camd runs: send uploads what was
// kept at once, never deletes what is left.
func TestSetMode(t *testing.T) {
	uploads := make(chan struct{}, 4)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { uploads <- struct{}{} }))
	defer srv.Close()
	dir := t.TempDir()
	crashed(t, dir, time.Now().Add(-time.Hour))
	r, err := Open(Options{Dir: dir, Mode: Ask, URL: srv.URL, Client: srv.Client(), Version: "1"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx, time.Hour); close(done) }()
	defer func() { cancel(); <-done }()
	if r.SetMode("sometimes") || r.Mode() != Ask {
		t.Fatalf("took an unknown mode: %s", r.Mode())
	}
	select {
	case <-uploads:
		t.Fatal("sent while the mode was ask")
	default:
	}
	r.SetMode(Send)
	select {
	case <-uploads:
	case <-time.After(10 * time.Second):
		t.Fatal("not sent once the mode was send")
	}
	waitSent := time.Now().Add(10 * time.Second)
	for list, _ := r.List(); len(list) != 1 || list[0].Sent.IsZero(); list, _ = r.List() {
		if time.Now().After(waitSent) {
			t.Fatalf("not marked sent: %+v", list)
		}
		time.Sleep(time.Millisecond)
	}
	r.SetMode(Never)
	if list, err := r.List(); err != nil || len(list) != 0 {
		t.Fatalf("kept with never: %v %+v", err, list)
	}
}
