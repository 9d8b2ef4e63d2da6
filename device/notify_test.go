package device

import (
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/camd-project/camd/device/api"
	"github.com/camd-project/camd/notify/webhooks"
	"github.com/camd-project/camd/notify/webpush"
)

// countingListener accepts connections on loopback and counts them.
func countingListener(t *testing.T) (addr string, n *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n = &atomic.Int32{}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String(), n
}

func browserKeys() webpush.Keys {
	k, _ := ecdh.P256().GenerateKey(rand.Reader)
	a := make([]byte, 16)
	rand.Read(a)
	return webpush.Keys{P256dh: base64.RawURLEncoding.EncodeToString(k.PublicKey().Bytes()), Auth: base64.RawURLEncoding.EncodeToString(a)}
}

func meID(t *testing.T, d *Daemon, token string) string {
	t.Helper()
	code, b := call(t, d, "GET", "/api/v1/me", token, nil)
	var me struct {
		User struct{ ID string } `json:"user"`
		ID   string              `json:"id"`
	}
	if code != 200 || json.Unmarshal(b, &me) != nil {
		t.Fatalf("me: %d %s", code, b)
	}
	if me.User.ID != "" {
		return me.User.ID
	}
	return me.ID
}

// A paired viewer may subscribe only a public https endpoint: not the
// LAN, not the device itself; they see and remove only their own
// subscriptions, choose only what they may see; a revoked user's
// subscriptions go with them.
func TestPushRoutes(t *testing.T) {
	d := running(t)
	ownerToken := owner(t, d)
	viewerToken := viewer(t, d, ownerToken)
	addr, conns := countingListener(t)

	code, b := call(t, d, "GET", "/api/v1/push/vapid", viewerToken, nil)
	var v api.VAPIDAnswer
	if json.Unmarshal(b, &v); code != 200 || len(v.PublicKey) != 87 {
		t.Fatalf("vapid: %d %s", code, b)
	}
	for _, ep := range []string{"https://" + addr + "/x", "https://" + d.Addr().String() + "/api/v1/settings", "https://localhost:1/x",
		"https://169.254.169.254/latest", "http://push.example.com/x", "https://[::1]:443/"} {
		code, b := call(t, d, "POST", "/api/v1/push/subscriptions", viewerToken, api.SubscribeRequest{Endpoint: ep, Keys: browserKeys()})
		if code != http.StatusUnprocessableEntity {
			t.Errorf("subscribing %s: %d %s", ep, code, b)
		}
	}
	code, b = call(t, d, "POST", "/api/v1/push/subscriptions", viewerToken, api.SubscribeRequest{Endpoint: "https://push.example.com/v1", Keys: browserKeys()})
	var sub webpush.Subscription
	if json.Unmarshal(b, &sub); code != http.StatusCreated || sub.ID == "" {
		t.Fatalf("subscribe: %d %s", code, b)
	}
	if code, b := call(t, d, "POST", "/api/v1/push/subscriptions", viewerToken, api.SubscribeRequest{Endpoint: "https://push.example.com/v2", Keys: webpush.Keys{P256dh: "AAAA", Auth: "AAAA"}}); code != http.StatusUnprocessableEntity {
		t.Errorf("bad keys: %d %s", code, b)
	}
	// The owner neither sees nor removes the viewer's subscription.
	code, b = call(t, d, "GET", "/api/v1/push/subscriptions", ownerToken, nil)
	if code != 200 || strings.TrimSpace(string(b)) != "[]" {
		t.Errorf("owner's list: %d %s", code, b)
	}
	if code, _ := call(t, d, "DELETE", "/api/v1/push/subscriptions/"+sub.ID, ownerToken, nil); code != http.StatusNotFound {
		t.Errorf("owner removed the viewer's subscription: %d", code)
	}
	if code, b := call(t, d, "PUT", "/api/v1/push/preferences", viewerToken, webpush.Preferences{Types: []string{"settings.changed"}}); code != http.StatusUnprocessableEntity {
		t.Errorf("a viewer chose settings: %d %s", code, b)
	}
	code, b = call(t, d, "PUT", "/api/v1/push/preferences", viewerToken, webpush.Preferences{Types: []string{"motion", "call.*"}})
	if code != 200 {
		t.Errorf("preferences: %d %s", code, b)
	}
	code, b = call(t, d, "GET", "/api/v1/push/preferences", viewerToken, nil)
	var p webpush.Preferences
	if json.Unmarshal(b, &p); code != 200 || strings.Join(p.Types, ",") != "motion,call.*" {
		t.Errorf("preferences read back: %d %s", code, b)
	}
	// Revoked: the credential stops, and the subscriptions go.
	if code, b := call(t, d, "DELETE", "/api/v1/users/"+meID(t, d, viewerToken), ownerToken, nil); code/100 != 2 {
		t.Fatalf("revoke: %d %s", code, b)
	}
	for _, r := range d.api.Routes() {
		method, pattern, _ := strings.Cut(r.Pattern, " ")
		if !strings.HasPrefix(pattern, "/api/v1/push/") && !strings.HasPrefix(pattern, "/api/v1/webhooks") {
			continue
		}
		path := pathParam.ReplaceAllString(pattern, sub.ID)
		if code, _ := call(t, d, method, path, viewerToken, map[string]any{}); code != http.StatusUnauthorized {
			t.Errorf("%s by a revoked viewer: %d", r.Pattern, code)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for subs, _ := d.notify.push.List(""); len(subs) != 0; subs, _ = d.notify.push.List("") {
		if time.Now().After(deadline) {
			t.Fatalf("the revoked viewer's subscriptions are kept: %+v", subs)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n := conns.Load(); n != 0 {
		t.Errorf("%d connections to the LAN address", n)
	}
}

// Webhooks: the owner adds one (the secret shown once), tests it, reads
// its log and removes it; a removed webhook, or a subscription
// removed, makes no connection: nothing is sent unless turned on.
func TestWebhookRoutesAndNothingSentUntilOn(t *testing.T) {
	d := running(t, func(c *Config) { c.Push.AllowPrivateEndpoints = true })
	ownerToken := owner(t, d)
	addr, conns := countingListener(t)
	got := make(chan string, 100)
	var secret atomic.Value
	secret.Store("")
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Type string }
		json.NewDecoder(r.Body).Decode(&body)
		got <- body.Type
	}))
	defer recv.Close()

	// Turned on, then off again, towards the counting listener.
	code, b := call(t, d, "POST", "/api/v1/webhooks", ownerToken, api.WebhookRequest{URL: "http://" + addr + "/hook"})
	var off webhooks.Hook
	if json.Unmarshal(b, &off); code != http.StatusCreated || !strings.HasPrefix(off.Secret, "whsec_") {
		t.Fatalf("add: %d %s", code, b)
	}
	code, b = call(t, d, "POST", "/api/v1/push/subscriptions", ownerToken, api.SubscribeRequest{Endpoint: "https://" + addr + "/push", Keys: browserKeys()})
	var sub webpush.Subscription
	if json.Unmarshal(b, &sub); code != http.StatusCreated {
		t.Fatalf("subscribe: %d %s", code, b)
	}
	if code, _ := call(t, d, "DELETE", "/api/v1/webhooks/"+off.ID, ownerToken, nil); code != http.StatusNoContent {
		t.Fatalf("remove: %d", code)
	}
	if code, _ := call(t, d, "DELETE", "/api/v1/push/subscriptions/"+sub.ID, ownerToken, nil); code != http.StatusNoContent {
		t.Fatalf("unsubscribe: %d", code)
	}
	if code, _ := call(t, d, "DELETE", "/api/v1/webhooks/"+off.ID, ownerToken, nil); code != http.StatusNotFound {
		t.Fatalf("remove twice: %d", code)
	}
	call(t, d, "PATCH", "/api/v1/settings", ownerToken, map[string]any{"name": "before"})

	code, b = call(t, d, "POST", "/api/v1/webhooks", ownerToken, api.WebhookRequest{URL: recv.URL, Types: []string{"settings.*"}})
	var on webhooks.Hook
	if json.Unmarshal(b, &on); code != http.StatusCreated {
		t.Fatalf("add: %d %s", code, b)
	}
	code, b = call(t, d, "GET", "/api/v1/webhooks", ownerToken, nil)
	if code != 200 || strings.Contains(string(b), "whsec_") || !strings.Contains(string(b), on.ID) {
		t.Fatalf("list: %d %s", code, b)
	}
	for _, body := range []api.WebhookRequest{{URL: "ftp://x/"}, {URL: recv.URL, Types: []string{"nope"}}} {
		if code, b := call(t, d, "POST", "/api/v1/webhooks", ownerToken, body); code != http.StatusUnprocessableEntity {
			t.Errorf("add %+v: %d %s", body, code, b)
		}
	}
	// The next settings change reaches the webhook that is on: the
	// sinks handled every earlier event, and none reached the listener.
	call(t, d, "PATCH", "/api/v1/settings", ownerToken, map[string]any{"name": "after"})
	select {
	case typ := <-got:
		if typ != "settings.changed" {
			t.Fatalf("got %s", typ)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the webhook that is on got nothing")
	}
	code, b = call(t, d, "POST", "/api/v1/webhooks/"+on.ID+"/test", ownerToken, nil)
	var at webhooks.Attempt
	if json.Unmarshal(b, &at); code != 200 || at.Status != 200 || <-got != "webhook.test" {
		t.Fatalf("test: %d %s", code, b)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, b = call(t, d, "GET", "/api/v1/webhooks/"+on.ID+"/deliveries", ownerToken, nil)
		var log []webhooks.Attempt
		json.Unmarshal(b, &log)
		if code == 200 && len(log) == 2 && log[0].Outcome == "test" && log[1].Outcome == "delivered" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries: %d %s", code, b)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n := conns.Load(); n != 0 {
		t.Errorf("%d connections to sinks that were turned off", n)
	}
	// The sinks' series: the delivery (not the test) counted; the
	// hook removed with nothing queued dropped nothing.
	waitMetric(t, d, ownerToken, 1, "camd_events_delivered_total", "sink", "webhooks")
	fams := scrape(t, d, ownerToken)
	for name, want := range map[string]float64{
		"camd_events_delivered_total": 1, "camd_events_failed_total": 0, "camd_events_dropped_total": 0, "camd_events_queued": 0,
	} {
		if got := value(fams, name, "sink", "webhooks"); got != want {
			t.Errorf("%s{sink=webhooks} = %v, want %v", name, got, want)
		}
		if got := value(fams, name, "sink", "webpush"); got != 0 {
			t.Errorf("%s{sink=webpush} = %v, want 0", name, got)
		}
	}
	if value(fams, "camd_events_delivered_total", "sink", "mqtt") != -1 {
		t.Error("an MQTT series with MQTT off")
	}
}
