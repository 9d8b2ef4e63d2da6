package api

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/camd-project/camd/device/crash"
	"github.com/camd-project/camd/device/metrics"
	"github.com/camd-project/camd/internal/logring"
)

func TestLogs(t *testing.T) {
	ring, err := logring.Open(t.TempDir(), logring.Options{Level: slog.LevelDebug})
	if err != nil {
		t.Fatal(err)
	}
	defer ring.Close()
	log := slog.New(ring.Handler())
	log.Debug("one")
	log.Warn("two", "n", 2)
	a := &Logs{Ring: ring}
	var ans LogsAnswer
	answer(t, do(t, a.routes(), request{method: "GET", path: "/api/v1/logs", token: "owner-token"}), 200, &ans)
	if len(ans.Entries) != 2 || ans.Next != 2 || msg(t, ans.Entries[1]) != "two" {
		t.Fatalf("all: %+v", ans)
	}
	answer(t, do(t, a.routes(), request{method: "GET", path: "/api/v1/logs?level=warn&since=-1h", token: "owner-token"}), 200, &ans)
	if len(ans.Entries) != 1 {
		t.Fatalf("warn: %s", ans.Entries)
	}
	for _, bad := range []string{"level=loud", "since=yesterday", "after=x", "limit=0", "wait=-1s"} {
		answer(t, do(t, a.routes(), request{method: "GET", path: "/api/v1/logs?" + bad, token: "owner-token"}), 400, nil)
	}
	for tok, code := range map[string]int{"": 401, "viewer-token": 403, "revoked-token": 401} {
		if w := do(t, a.routes(), request{method: "GET", path: "/api/v1/logs", token: tok}); w.Code != code {
			t.Errorf("token %q: %d, want %d", tok, w.Code, code)
		}
	}

	// Following: a long poll answers with the next line once it is
	// logged, skipping lines below the level asked for.
	done := make(chan LogsAnswer)
	go func() {
		var ans LogsAnswer
		answer(t, do(t, a.routes(), request{method: "GET", path: "/api/v1/logs?after=2&level=info&wait=60s", token: "owner-token"}), 200, &ans)
		done <- ans
	}()
	// Whether the poll waits before or after these, a debug line does
	// not end it.
	log.Debug("three")
	log.Info("four")
	got := <-done
	if len(got.Entries) != 1 || msg(t, got.Entries[0]) != "four" || got.Next != 4 {
		t.Fatalf("follow: %s next %d", got.Entries, got.Next)
	}
	// A poll that times out answers no lines and where to go on from.
	answer(t, do(t, a.routes(), request{method: "GET", path: "/api/v1/logs?after=4&wait=1ms", token: "owner-token"}), 200, &ans)
	if len(ans.Entries) != 0 || ans.Next != 4 {
		t.Fatalf("timed out poll: %+v", ans)
	}
}

func msg(t *testing.T, line json.RawMessage) string {
	var l struct {
		Msg string `json:"msg"`
	}
	if err := json.Unmarshal(line, &l); err != nil {
		t.Fatal(err)
	}
	return l.Msg
}

type fakeCrashes struct {
	reps map[string]crash.Report
	sent []string
}

func (f *fakeCrashes) List() ([]crash.Summary, error) {
	var out []crash.Summary
	for _, r := range f.reps {
		out = append(out, crash.Summary{ID: r.ID, Version: r.Version})
	}
	return out, nil
}

func (f *fakeCrashes) Get(id string) (crash.Report, error) {
	r, ok := f.reps[id]
	if !ok {
		return r, crash.ErrNotFound
	}
	return r, nil
}

func (f *fakeCrashes) Send(_ context.Context, id string) (crash.Report, error) {
	r, err := f.Get(id)
	if err == nil {
		f.sent = append(f.sent, id)
		r.Sent = time.Now()
	}
	return r, err
}

func (f *fakeCrashes) Delete(id string) error {
	if _, err := f.Get(id); err != nil {
		return err
	}
	delete(f.reps, id)
	return nil
}

func TestCrashes(t *testing.T) {
	f := &fakeCrashes{reps: map[string]crash.Report{"c1": {ID: "c1", Version: "v1", Trace: "panic: x"}}}
	a := &Crashes{Reports: f}
	var list struct{ Crashes []crash.Summary }
	answer(t, do(t, a.routes(), request{method: "GET", path: "/api/v1/crashes", token: "owner-token"}), 200, &list)
	if len(list.Crashes) != 1 || list.Crashes[0].ID != "c1" {
		t.Fatalf("list: %+v", list)
	}
	var rep crash.Report
	answer(t, do(t, a.routes(), request{method: "GET", path: "/api/v1/crashes/c1", token: "owner-token"}), 200, &rep)
	if rep.Trace != "panic: x" {
		t.Fatalf("report: %+v", rep)
	}
	answer(t, do(t, a.routes(), request{method: "GET", path: "/api/v1/crashes/nope", token: "owner-token"}), 404, nil)
	for _, r := range []request{
		{method: "GET", path: "/api/v1/crashes"}, {method: "GET", path: "/api/v1/crashes/c1"},
		{method: "POST", path: "/api/v1/crashes/c1/send"}, {method: "DELETE", path: "/api/v1/crashes/c1"},
	} {
		for tok, code := range map[string]int{"": 401, "viewer-token": 403, "revoked-token": 401} {
			r.token = tok
			if w := do(t, a.routes(), r); w.Code != code {
				t.Errorf("%s %s with %q: %d, want %d", r.method, r.path, tok, w.Code, code)
			}
		}
	}
	if len(f.sent) != 0 {
		t.Fatalf("sent without the owner: %v", f.sent)
	}
	answer(t, do(t, a.routes(), request{method: "POST", path: "/api/v1/crashes/c1/send", token: "owner-token"}), 200, nil)
	if len(f.sent) != 1 {
		t.Fatalf("sent %v", f.sent)
	}
	answer(t, do(t, a.routes(), request{method: "DELETE", path: "/api/v1/crashes/c1", token: "owner-token"}), 204, nil)
	answer(t, do(t, a.routes(), request{method: "DELETE", path: "/api/v1/crashes/c1", token: "owner-token"}), 404, nil)
}

func TestMetricsAuth(t *testing.T) {
	toks, err := metrics.OpenTokens(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "camd_test", Help: "a test gauge"})
	g.Set(7)
	reg.MustRegister(g)
	m := &Metrics{Scrape: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), Tokens: toks}
	a := &API{Credentials: tokens, Logger: discard, Web: &Web{}, Pairing: &Pairing{}, Users: &Users{}, Live: &Live{WHEP: &fakeWHEP{}},
		Recordings: &Recordings{WHEP: &fakeWHEP{}}, Snapshots: &Snapshots{}, Events: &Events{}, Settings: &Settings{}, Storage: &Storage{},
		Update: &Update{}, Logs: &Logs{}, Crashes: &Crashes{}, Metrics: m}
	h := a.Handler()
	scrape := func(tok string) int {
		w := doWith(t, h, request{method: "GET", path: "/metrics", token: tok})
		if w.Code == 200 {
			p := expfmt.NewTextParser(model.UTF8Validation)
			fams, err := p.TextToMetricFamilies(strings.NewReader(w.Body.String()))
			if err != nil {
				t.Fatalf("exposition: %v\n%s", err, w.Body)
			}
			if v := fams["camd_test"].GetMetric()[0].GetGauge().GetValue(); v != 7 {
				t.Fatalf("camd_test = %v", v)
			}
		}
		return w.Code
	}
	if c := scrape("owner-token"); c != 200 {
		t.Fatalf("owner: %d", c)
	}
	var created MetricsToken
	// Only the owner makes a token.
	answer(t, doWith(t, h, request{method: "POST", path: "/api/v1/metrics/token", token: "viewer-token"}), 403, nil)
	answer(t, doWith(t, h, request{method: "POST", path: "/api/v1/metrics/token", token: "owner-token"}), 201, &created)
	if !strings.HasPrefix(created.Token, "camd-metrics-") {
		t.Fatalf("token %q", created.Token)
	}
	for tok, code := range map[string]int{
		created.Token: 200, "": 401, "camd-metrics-wrong": 401, created.Token + "x": 401, "viewer-token": 403, "revoked-token": 401,
	} {
		if c := scrape(tok); c != code {
			t.Errorf("/metrics with %q: %d, want %d", tok, c, code)
		}
	}
	// The metrics token opens nothing else.
	for _, r := range []request{
		{method: "GET", path: "/api/v1/logs"}, {method: "POST", path: "/api/v1/metrics/token"}, {method: "GET", path: "/api/v1/crashes"},
	} {
		r.token = created.Token
		if w := doWith(t, h, r); w.Code != http.StatusUnauthorized {
			t.Errorf("%s %s with the metrics token: %d, want 401", r.method, r.path, w.Code)
		}
	}
	answer(t, doWith(t, h, request{method: "DELETE", path: "/api/v1/metrics/token", token: "owner-token"}), 204, nil)
	if c := scrape(created.Token); c != 401 {
		t.Errorf("revoked token: %d", c)
	}
	answer(t, doWith(t, h, request{method: "DELETE", path: "/api/v1/metrics/token", token: "owner-token"}), 404, nil)
}
