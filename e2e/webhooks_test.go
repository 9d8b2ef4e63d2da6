package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/camd-project/camd/device/api"
	"github.com/camd-project/camd/notify/webhooks"
)

// hookReceiver is the owner's webhook endpoint: it checks every
// signature, records each webhook-id (a receiver deduplicates by it),
// and holds every request while held is set.
type hookReceiver struct {
	t       testing.TB
	mu      sync.Mutex
	secrets map[string]string // path → secret
	seen    map[string]int    // webhook-id → times received
	hold    chan struct{}     // closed: answer; open: hold
	all     chan struct{}     // closed when want distinct IDs arrived
	want    int
	bad     int
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	id, ts := r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp")
	sec, _ := strconv.ParseInt(ts, 10, 64)
	h.mu.Lock()
	secret := h.secrets[r.URL.Path]
	hold := h.hold
	h.mu.Unlock()
	if sig, err := webhooks.Sign(secret, id, sec, body); err != nil || sig != r.Header.Get("webhook-signature") {
		h.mu.Lock()
		h.bad++
		h.mu.Unlock()
		w.WriteHeader(400)
		return
	}
	h.mu.Lock()
	h.seen[id]++
	if len(h.seen) == h.want && h.seen[id] == 1 {
		close(h.all)
	}
	h.mu.Unlock()
	select {
	case <-hold:
	case <-r.Context().Done(): // camd was killed while it waited
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// hookCall is an owner's request with a JSON body.
func hookCall(t testing.TB, d *daemon, method, path string, body, out any) int {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, "https://"+d.addr+path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+d.token(t))
	req.Header.Set("Content-Type", "application/json")
	resp, err := insecureClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(resp.Body)
	if out != nil {
		json.Unmarshal(rb, out)
	}
	return resp.StatusCode
}

// webhooksKill9 queues hooks×events deliveries while the receiver
// holds what camd sends, kills camd with SIGKILL, starts it again and
// returns how long it took from the restart until every delivery had
// arrived, and how many arrived twice (those in flight at the kill).
func webhooksKill9(t testing.TB, hooks, events int) (time.Duration, int) {
	data := t.TempDir()
	d := startAt(t, data, "")
	recv := &hookReceiver{t: t, secrets: map[string]string{}, seen: map[string]int{}, hold: make(chan struct{}),
		all: make(chan struct{}), want: hooks * events}
	srv := httptest.NewServer(recv)
	defer srv.Close()
	for i := range hooks {
		path := fmt.Sprintf("/hook/%d", i)
		var h webhooks.Hook
		if code := hookCall(t, d, "POST", "/api/v1/webhooks", api.WebhookRequest{URL: srv.URL + path, Types: []string{"settings.changed"}}, &h); code != http.StatusCreated {
			t.Fatalf("add: %d", code)
		}
		recv.mu.Lock()
		recv.secrets[path] = h.Secret
		recv.mu.Unlock()
	}
	for i := range events {
		if code := hookCall(t, d, "PATCH", "/api/v1/settings", map[string]any{"name": fmt.Sprintf("cam-%d", i)}, nil); code != 200 {
			t.Fatalf("settings: %d", code)
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		var list []webhooks.Hook
		d.api(t, "/api/v1/webhooks", &list)
		queued := 0
		for _, h := range list {
			queued += h.Queued
		}
		if queued == hooks*events {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d deliveries queued, want %d", queued, hooks*events)
		}
		time.Sleep(20 * time.Millisecond)
	}
	d.kill9(t)
	recv.mu.Lock()
	inflight := len(recv.seen)
	close(recv.hold) // from now on the receiver answers at once
	recv.mu.Unlock()

	start := time.Now()
	d = startAt(t, data, d.store)
	select {
	case <-recv.all:
	case <-time.After(5 * time.Minute):
		recv.mu.Lock()
		defer recv.mu.Unlock()
		t.Fatalf("%d of %d deliveries arrived after the restart", len(recv.seen), hooks*events)
	}
	took := time.Since(start)
	recv.mu.Lock()
	defer recv.mu.Unlock()
	twice := 0
	for _, n := range recv.seen {
		twice += n - 1
	}
	if recv.bad != 0 {
		t.Errorf("%d deliveries with a bad signature", recv.bad)
	}
	// Only what was in flight when camd died (sent, not answered) comes
	// again, with the same ID.
	if twice > inflight {
		t.Errorf("%d deliveries twice, but only %d were in flight at the kill", twice, inflight)
	}
	d.stop()
	return took, twice
}

// TestWebhooksSurviveKill9: 1,000 deliveries queued (10 webhooks × 100
// events), camd killed with SIGKILL: all arrive after the restart, and
// only those in flight at the kill twice, with their ID.
func TestWebhooksSurviveKill9(t *testing.T) {
	took, twice := webhooksKill9(t, 10, 100)
	t.Logf("1,000 deliveries in %v after the restart; %d twice", took, twice)
}

// BenchmarkWebhooksKill9: the time from the restart to the last of
// 1,000 queued deliveries, and how many came twice.
func BenchmarkWebhooksKill9(b *testing.B) {
	var sum time.Duration
	twice := 0
	for range b.N {
		took, n := webhooksKill9(b, 10, 100)
		sum += took
		twice += n
	}
	b.ReportMetric(float64(sum.Milliseconds())/float64(b.N), "drain_ms")
	b.ReportMetric(float64(twice)/float64(b.N), "twice")
}
