package device

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/camd-project/camd/device/api"
	"github.com/camd-project/camd/media/whep"
)

// scrape reads GET /metrics with token and parses it with Prometheus's
// own text parser.
func scrape(t *testing.T, d *Daemon, token string) map[string]*dto.MetricFamily {
	t.Helper()
	code, b := call(t, d, "GET", "/metrics", token, nil)
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", code, b)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("exposition: %v\n%s", err, b)
	}
	return fams
}

// value is a metric's value, with labels given as name, value pairs; -1
// when the series is missing.
func value(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
next:
	for _, m := range f.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, l := range m.GetLabel() {
				found = found || (l.GetName() == labels[i] && l.GetValue() == labels[i+1])
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		}
	}
	return -1
}

// waitMetric scrapes until the series named with labels reaches at
// least want.
func waitMetric(t *testing.T, d *Daemon, token string, want float64, name string, labels ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := value(scrape(t, d, token), name, labels...)
		if got >= want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s%v = %v, want at least %v", name, labels, got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The metrics move with what really happens: a viewer that connects is
// counted, its frames delivered; one that leaves is not, and its frames
// stay counted. A metrics token scrapes; a wrong one, a viewer's
// credential and a revoked user's do not.
func TestMetricsFollowAViewer(t *testing.T) {
	d, _ := runningAt(t, testConfig(t))
	ownerToken := owner(t, d)
	viewerToken := viewer(t, d, ownerToken)

	fams := scrape(t, d, ownerToken)
	if v := value(fams, "camd_viewers"); v != 0 {
		t.Fatalf("camd_viewers = %v before any viewer", v)
	}
	for _, name := range []string{"camd_frames_published_total", "camd_rtp_nack_total", "camd_rtp_pli_total", "camd_recording_paused",
		"camd_storage_free_bytes", "camd_recording_fsyncs_total", "camd_pairing_failures_total", "camd_video_target_bitrate_bps", "go_goroutines"} {
		if value(fams, name) < 0 {
			t.Errorf("%s missing", name)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	viewed := make(chan whep.ViewStats, 1)
	go func() {
		st, _ := whep.View(ctx, "https://"+d.Addr().String()+"/api/v1/whep", whep.ViewOptions{HTTPClient: testClient(),
			Header: http.Header{"Authorization": {"Bearer " + viewerToken}}})
		viewed <- st
	}()
	var delivered float64
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		fams = scrape(t, d, ownerToken)
		delivered = value(fams, "camd_frames_delivered_total", "consumer", "viewer")
		if value(fams, "camd_viewers") == 1 && delivered > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("viewers %v, delivered to viewers %v", value(fams, "camd_viewers"), delivered)
		}
	}
	if value(fams, "camd_frames_published_bytes_total") <= 0 || value(fams, "camd_viewer_sessions_total") != 1 {
		t.Errorf("published bytes %v, sessions %v", value(fams, "camd_frames_published_bytes_total"), value(fams, "camd_viewer_sessions_total"))
	}
	cancel()
	<-viewed
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		fams = scrape(t, d, ownerToken)
		if value(fams, "camd_viewers") == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("viewers %v after the viewer left", value(fams, "camd_viewers"))
		}
	}
	if v := value(fams, "camd_frames_delivered_total", "consumer", "viewer"); v < delivered {
		t.Errorf("frames delivered to viewers went down from %v to %v", delivered, v)
	}

	// A metrics token, made by the owner, shown once.
	code, b := call(t, d, "POST", "/api/v1/metrics/token", ownerToken, nil)
	var tok api.MetricsToken
	if json.Unmarshal(b, &tok); code != http.StatusCreated || tok.Token == "" {
		t.Fatalf("token: %d %s", code, b)
	}
	scrape(t, d, tok.Token)
	for name, c := range map[string]struct {
		token string
		code  int
	}{
		"wrong token": {"camd-metrics-0000", 401}, "no credential": {"", 401}, "viewer": {viewerToken, 403},
	} {
		if code, _ := call(t, d, "GET", "/metrics", c.token, nil); code != c.code {
			t.Errorf("/metrics with %s: %d, want %d", name, code, c.code)
		}
	}
	if code, _ := call(t, d, "GET", "/api/v1/logs", tok.Token, nil); code != http.StatusUnauthorized {
		t.Errorf("the metrics token reads the log: %d", code)
	}
	if code, _ := call(t, d, "DELETE", "/api/v1/metrics/token", ownerToken, nil); code != http.StatusNoContent {
		t.Fatalf("revoke: %d", code)
	}
	if code, _ := call(t, d, "GET", "/metrics", tok.Token, nil); code != http.StatusUnauthorized {
		t.Errorf("a revoked metrics token: %d", code)
	}
}

// The owner's observability routes refuse a viewer (403), a revoked
// user (401) and no credential (401); the owner reads the log.
func TestObservabilityRoutesRefuse(t *testing.T) {
	d := running(t)
	ownerToken := owner(t, d)
	viewerToken := viewer(t, d, ownerToken)
	revokedToken := viewer(t, d, ownerToken)
	u, err := d.pairing.Authenticate(revokedToken)
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := call(t, d, "DELETE", "/api/v1/users/"+u.ID, ownerToken, nil); code != http.StatusNoContent {
		t.Fatalf("revoke: %d", code)
	}
	if code, _ := call(t, d, "GET", "/api/v1/events", revokedToken, nil); code != http.StatusUnauthorized {
		t.Fatalf("the revoked user still reads events: %d", code)
	}
	routes := []struct{ method, path string }{
		{"GET", "/api/v1/logs"}, {"GET", "/api/v1/logs?after=1&wait=1s"}, {"GET", "/api/v1/crashes"}, {"GET", "/api/v1/crashes/x"},
		{"POST", "/api/v1/crashes/x/send"}, {"DELETE", "/api/v1/crashes/x"}, {"GET", "/metrics"},
		{"POST", "/api/v1/metrics/token"}, {"DELETE", "/api/v1/metrics/token"},
	}
	for _, r := range routes {
		for name, c := range map[string]struct {
			token string
			code  int
		}{"viewer": {viewerToken, 403}, "revoked user": {revokedToken, 401}, "no credential": {"", 401}} {
			if code, _ := call(t, d, r.method, r.path, c.token, nil); code != c.code {
				t.Errorf("%s %s as %s: %d, want %d", r.method, r.path, name, code, c.code)
			}
		}
	}
	code, b := call(t, d, "GET", "/api/v1/logs?level=info", ownerToken, nil)
	var logs api.LogsAnswer
	if json.Unmarshal(b, &logs); code != http.StatusOK || len(logs.Entries) == 0 || !strings.Contains(string(b), "camd: serving") {
		t.Fatalf("the owner's log: %d %s", code, b)
	}
}
