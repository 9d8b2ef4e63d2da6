package device

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/camd-project/camd/device/crash"
	"github.com/camd-project/camd/internal/logring"
)

// crashConfig is the configuration of the camd that TestCrashReport
// crashes and starts again: the same in both processes.
func crashConfig(dir, mode, url, ca string) Config {
	cfg := Defaults()
	cfg.Data = dir
	cfg.Listen = "127.0.0.1:0"
	cfg.Source = "passthrough"
	cfg.Passthrough.FIFO = filepath.Join(dir, "no-writer.fifo")
	cfg.CrashReports, cfg.CrashReportsURL, cfg.CrashReportsCAFile = mode, url, ca
	return cfg
}

// crashedSecret is logged by the camd that crashes: it must not reach
// the report.
const crashedSecret = "s3cr3t-token-of-the-crashed-run"

// TestCrashChild is not a test of its own: it is the camd that
// TestCrashReport runs in a child process, and it crashes (an
// unrecovered panic on a goroutine of its own) once it serves.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv("CAMD_TEST_CRASH_DATA")
	if dir == "" {
		t.Skip("the child process of TestCrashReport")
	}
	cfg := crashConfig(dir, os.Getenv("CAMD_TEST_CRASH_MODE"), os.Getenv("CAMD_TEST_CRASH_URL"), os.Getenv("CAMD_TEST_CRASH_CA"))
	d, err := New(cfg, slog.New(slog.NewTextHandler(os.Stderr, nil)))
	if err != nil {
		t.Fatal(err)
	}
	go d.Run(context.Background())
	for {
		c, err := net.Dial("tcp", d.Addr().String())
		if err == nil {
			c.Close()
			break
		}
	}
	if code, _ := call(t, d, "GET", "/health", "", nil); code != http.StatusOK {
		t.Fatalf("health: %d", code)
	}
	d.log.Warn("camd test: about to crash", "token", crashedSecret)
	go func() {
		var m map[string]int
		//lint:ignore SA5000 the crash is the point
		m["crash"]++ // panics: assignment to entry in nil map
	}()
	select {}
}

// collector is a loopback https crash collector that counts the
// connections made to it and the reports it received.
type collector struct {
	*httptest.Server
	conns, uploads atomic.Int32
	ca             string
}

func newCollector(t *testing.T) *collector {
	c := &collector{}
	c.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var rep crash.Report
		if err := json.NewDecoder(r.Body).Decode(&rep); err != nil || rep.Trace == "" {
			http.Error(w, "not a report", http.StatusBadRequest)
			return
		}
		c.uploads.Add(1)
	}))
	c.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			c.conns.Add(1)
		}
	}
	c.StartTLS()
	t.Cleanup(c.Close)
	c.ca = filepath.Join(t.TempDir(), "collector.pem")
	if err := os.WriteFile(c.ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return c
}

// crashChild runs TestCrashChild on dir and waits for it to crash.
func crashChild(t *testing.T, dir, mode string, c *collector) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1", "-test.timeout=2m")
	cmd.Env = append(os.Environ(), "CAMD_TEST_CRASH_DATA="+dir, "CAMD_TEST_CRASH_MODE="+mode,
		"CAMD_TEST_CRASH_URL="+c.URL, "CAMD_TEST_CRASH_CA="+c.ca)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(out), "assignment to entry in nil map") {
		t.Fatalf("the child did not crash: %v\n%s", err, out)
	}
}

// A real crash of a camd process becomes, at the next start, a crash
// report (version, uptime, trace, the log's last lines, no secret) and a
// crash.recorded event. With ask nothing leaves the device until the
// owner sends it, and then once; with send it is uploaded at once; with
// never only a line in the log is kept.
func TestCrashReport(t *testing.T) {
	for _, mode := range []string{crash.Ask, crash.Send, crash.Never} {
		t.Run(mode, func(t *testing.T) {
			c := newCollector(t)
			dir := t.TempDir()
			began := time.Now()
			crashChild(t, dir, mode, c)
			d, _ := runningAt(t, crashConfig(dir, mode, c.URL, c.ca))
			reps, err := d.crashes.List()
			if err != nil {
				t.Fatal(err)
			}
			events, _ := d.recording.events.List(time.Time{}, time.Time{}, crash.EventRecorded, 0)
			if mode == crash.Never {
				if len(reps) != 0 || len(events) != 0 {
					t.Fatalf("never: reports %v, events %v", reps, events)
				}
				es, _, _ := d.ring.Read(logring.Query{})
				var log strings.Builder
				for _, e := range es {
					log.Write(e.Line)
				}
				if !strings.Contains(log.String(), "no report is kept") {
					t.Fatalf("never: no line in the log")
				}
				if n := c.conns.Load(); n != 0 {
					t.Fatalf("never: %d connections to the collector", n)
				}
				return
			}
			if len(reps) != 1 || len(events) != 1 || events[0].Data["crash_id"] != reps[0].ID {
				t.Fatalf("reports %+v, events %+v", reps, events)
			}
			rep, err := d.crashes.Get(reps[0].ID)
			if err != nil {
				t.Fatal(err)
			}
			log := strings.Join(lines(rep.Log), "\n")
			if rep.Version != Version || rep.Uptime < 0 || rep.Started.Before(began) || !strings.Contains(rep.Trace, "assignment to entry in nil map") ||
				!strings.Contains(log, "about to crash") || !strings.Contains(log, "camd: serving") {
				t.Fatalf("report: version %q started %v uptime %v\ntrace %.300s\nlog %s", rep.Version, rep.Started, rep.Uptime, rep.Trace, log)
			}
			if strings.Contains(log, crashedSecret) || strings.Contains(rep.Trace, crashedSecret) {
				t.Fatalf("the crashed run's secret is in the report")
			}
			if mode == crash.Send {
				for deadline := time.Now().Add(20 * time.Second); c.uploads.Load() != 1; time.Sleep(10 * time.Millisecond) {
					if time.Now().After(deadline) {
						t.Fatalf("send: %d uploads", c.uploads.Load())
					}
				}
				return
			}
			// ask: nothing leaves the device until the owner says so.
			ownerToken := owner(t, d)
			if n := c.conns.Load(); n != 0 {
				t.Fatalf("ask: %d connections to the collector before the owner chose", n)
			}
			code, b := call(t, d, "GET", "/api/v1/crashes/"+rep.ID, ownerToken, nil)
			if code != http.StatusOK || !strings.Contains(string(b), "nil map") {
				t.Fatalf("GET report: %d %.200s", code, b)
			}
			if code, b := call(t, d, "POST", "/api/v1/crashes/"+rep.ID+"/send", ownerToken, nil); code != http.StatusOK {
				t.Fatalf("send: %d %s", code, b)
			}
			if n := c.uploads.Load(); n != 1 {
				t.Fatalf("approved: %d uploads, want 1", n)
			}
			if code, _ := call(t, d, "DELETE", "/api/v1/crashes/"+rep.ID, ownerToken, nil); code != http.StatusNoContent {
				t.Fatalf("delete: %d", code)
			}
			if reps, _ := d.crashes.List(); len(reps) != 0 || c.uploads.Load() != 1 {
				t.Fatalf("after delete: %v, %d uploads", reps, c.uploads.Load())
			}
		})
	}
}

func lines(ls []json.RawMessage) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = string(l)
	}
	return out
}

// crash_reports is the owner's setting: with the configuration's ask,
// the owner turns send on (the report kept is uploaded at once) and
// never (the reports are deleted); send is refused where no collector
// is configured.
func TestCrashReportsSetting(t *testing.T) {
	c := newCollector(t)
	dir := t.TempDir()
	crashChild(t, dir, crash.Ask, c)
	d, _ := runningAt(t, crashConfig(dir, crash.Ask, c.URL, c.ca))
	tok := owner(t, d)
	if reps, _ := d.crashes.List(); len(reps) != 1 || c.conns.Load() != 0 {
		t.Fatalf("ask: reports %v, %d connections", reps, c.conns.Load())
	}
	if code, out := patchSettings(t, d, tok, "application/json", `{"crash_reports": "send"}`); code != http.StatusOK || out["crash_reports"] != "send" {
		t.Fatalf("PATCH send: %d %v", code, out)
	}
	for deadline := time.Now().Add(20 * time.Second); c.uploads.Load() != 1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("send: %d uploads", c.uploads.Load())
		}
	}
	if code, out := patchSettings(t, d, tok, "application/json", `{"crash_reports": "never"}`); code != http.StatusOK {
		t.Fatalf("PATCH never: %d %v", code, out)
	}
	if reps, err := d.crashes.List(); err != nil || len(reps) != 0 || d.crashes.Mode() != crash.Never {
		t.Fatalf("never: %v %v, mode %s", err, reps, d.crashes.Mode())
	}

	// No collector configured: send is not a choice.
	d2 := running(t)
	code, out := patchSettings(t, d2, owner(t, d2), "application/json", `{"crash_reports": "send"}`)
	if code != http.StatusUnprocessableEntity || out["field"] != "crash_reports" || !strings.Contains(fmt.Sprint(out["allowed"]), "no crash_reports_url") {
		t.Fatalf("send without a collector: %d %v", code, out)
	}
}
