package api

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/camd-project/camd/network"
)

// fakeCodes is a Wi-Fi code window that notes how it was driven.
type fakeCodes struct {
	status        network.CodeStatus
	starts, stops int
}

func (f *fakeCodes) Start() network.CodeStatus {
	f.starts++
	f.status = network.CodeStatus{State: network.CodeScanning}
	return f.status
}
func (f *fakeCodes) Stop()                      { f.stops++; f.status.State = network.CodeStopped }
func (f *fakeCodes) Status() network.CodeStatus { return f.status }

// Only an owner scans, joins, reads the status, forgets or opens the
// code window; a viewer, a revoked credential and no credential are
// refused on every route, and nothing happens.
func TestNetworkRoutesNeedTheOwner(t *testing.T) {
	sim := network.NewSim(network.SimNetworks()...)
	codes := &fakeCodes{}
	setup := network.NewSetup(network.SetupOptions{Link: sim, AP: &network.SimAP{}, Secret: func() []byte { return []byte("0123456789abcdef") }})
	routes := (&Network{Link: sim, Codes: codes, Setup: setup}).routes()
	for _, c := range []request{
		{method: "GET", path: "https://camera/api/v1/network/wifi/setup"},
		{method: "GET", path: "/api/v1/network/wifi"},
		{method: "GET", path: "/api/v1/network/wifi/scan"},
		{method: "POST", path: "https://camera/api/v1/network/wifi", body: `{"ssid": "camd-sim-home", "passphrase": "camd-sim-passphrase"}`},
		{method: "DELETE", path: "/api/v1/network/wifi"},
		{method: "POST", path: "/api/v1/network/wifi/code", body: `{}`},
		{method: "DELETE", path: "/api/v1/network/wifi/code"},
	} {
		for token, code := range map[string]int{"": 401, "revoked-token": 401, "viewer-token": 403} {
			c.token = token
			w := do(t, routes, c)
			answer(t, w, code, nil)
			if strings.Contains(w.Body.String(), "camd-sim-passphrase") || strings.Contains(w.Body.String(), network.SetupNetwork([]byte("0123456789abcdef")).Passphrase) {
				t.Errorf("%s %s answers the passphrase", c.method, c.path)
			}
		}
	}
	if st, _ := sim.Status(t.Context()); st.Saved || codes.starts+codes.stops != 0 {
		t.Fatalf("ran for a viewer or a stranger: %+v %+v", st, codes)
	}
}

// The owner joins; a join that fails keeps the old network and says
// why; credentials come only over HTTPS, never come back.
func TestNetworkJoin(t *testing.T) {
	sim := network.NewSim(network.SimNetworks()...)
	codes := &fakeCodes{}
	routes := (&Network{Link: sim, Codes: codes}).routes()
	owner := func(method, path, body string) request {
		return request{method: method, path: path, token: "owner-token", body: body}
	}
	var list []ScannedNetwork
	answer(t, do(t, routes, owner("GET", "/api/v1/network/wifi/scan", "")), 200, &list)
	if len(list) != 4 || list[0].SSID != "camd-sim-home" || list[0].Security != network.PSK || list[0].Channel != 6 || list[0].Signal != -48 {
		t.Fatalf("scan: %+v", list)
	}

	join := `{"ssid": "camd-sim-home", "passphrase": "camd-sim-passphrase"}`
	w := do(t, routes, owner("POST", "/api/v1/network/wifi", join))
	answer(t, w, 403, nil) // not over TLS
	var st network.Status
	w = do(t, routes, owner("POST", "https://camera/api/v1/network/wifi", join))
	answer(t, w, 200, &st)
	if st.State != network.Connected || st.SSID != "camd-sim-home" {
		t.Fatalf("joined: %+v", st)
	}
	bodies := w.Body.String()

	for _, c := range []struct {
		body, reason string
	}{
		{`{"ssid": "camd-sim-wpa3", "security": "sae", "passphrase": "wrong"}`, "wrong_key"},
		{`{"ssid": "gone", "passphrase": "some passphrase"}`, "not_found"},
		{`{"ssid_hex": "ff00ff", "passphrase": "some passphrase"}`, "not_found"},
		{`{"ssid": "camd-sim-nodhcp", "passphrase": "camd-sim-passphrase"}`, "no_lease"},
	} {
		var failed JoinFailed
		w := do(t, routes, owner("POST", "https://camera/api/v1/network/wifi", c.body))
		answer(t, w, 422, &failed)
		bodies += w.Body.String()
		if failed.Reason != c.reason || failed.Status.SSID != "camd-sim-home" || failed.Status.State != network.Connected {
			t.Errorf("%s: %+v", c.body, failed)
		}
	}
	for _, body := range []string{
		`{"ssid": "camd-sim-home", "passphrase": "short"}`,
		`{"ssid": "", "passphrase": "camd-sim-passphrase"}`,
		`{"ssid": "x", "ssid_hex": "78", "passphrase": "camd-sim-passphrase"}`,
		`{"ssid_hex": "zz", "passphrase": "camd-sim-passphrase"}`,
		`{"ssid": "camd-sim-home", "security": "wep", "passphrase": "camd-sim-passphrase"}`,
		`{"ssid": "camd-sim-home", "password": "camd-sim-passphrase"}`,
	} {
		w := do(t, routes, owner("POST", "https://camera/api/v1/network/wifi", body))
		answer(t, w, 400, nil)
		bodies += w.Body.String()
	}

	var ws WiFiStatus
	w = do(t, routes, owner("GET", "/api/v1/network/wifi", ""))
	answer(t, w, 200, &ws)
	bodies += w.Body.String()
	if ws.SSID != "camd-sim-home" || !ws.Saved || ws.Code == nil || ws.Code.State != "" {
		t.Fatalf("status: %+v", ws)
	}
	if strings.Contains(bodies, "camd-sim-passphrase") || strings.Contains(bodies, "some passphrase") {
		t.Errorf("an answer carries a passphrase:\n%s", bodies)
	}

	var cs network.CodeStatus
	answer(t, do(t, routes, owner("POST", "/api/v1/network/wifi/code", `{}`)), 202, &cs)
	answer(t, do(t, routes, owner("DELETE", "/api/v1/network/wifi/code", "")), 200, &cs)
	if codes.starts != 1 || codes.stops != 1 || cs.State != network.CodeStopped {
		t.Errorf("code window: %+v %+v", codes, cs)
	}

	answer(t, do(t, routes, owner("DELETE", "/api/v1/network/wifi", "")), 204, nil)
	if st, _ := sim.Status(t.Context()); st.Saved {
		t.Errorf("not forgotten: %+v", st)
	}

	// Without a link manager, or raw pictures, camd says so.
	answer(t, do(t, (&Network{}).routes(), owner("GET", "/api/v1/network/wifi", "")), 503, nil)
	answer(t, do(t, (&Network{Link: sim}).routes(), owner("POST", "/api/v1/network/wifi/code", `{}`)), 503, nil)
}

// A join runs to its end when the client goes away: in setup mode the
// join itself cuts the phone off the camera's access point.
func TestNetworkJoinOutlivesItsClient(t *testing.T) {
	sim := network.NewSim(network.SimNetworks()...)
	sim.Delay = 10 * time.Millisecond
	h := serve(tokens, discard, (&Network{Link: sim}).routes(), nil)
	req := httptest.NewRequest("POST", "https://camera/api/v1/network/wifi", strings.NewReader(`{"ssid": "camd-sim-home", "passphrase": "camd-sim-passphrase"}`))
	req.Header.Set("Authorization", "Bearer owner-token")
	req.Header.Set("Content-Type", "application/json")
	ctx, cancel := context.WithCancel(req.Context())
	cancel() // the phone is gone
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req.WithContext(ctx))
	if st, _ := sim.Status(t.Context()); st.State != network.Connected {
		t.Fatalf("the join ended with its client: %d %s, link %+v", w.Code, w.Body, st)
	}
}

// The owner reads the access point setup mode opens: over HTTPS only,
// whether it is open, and 503 without setup mode.
func TestNetworkSetupAccessPoint(t *testing.T) {
	secret := []byte("0123456789abcdef")
	sim := network.NewSim(network.SimNetworks()...)
	setup := network.NewSetup(network.SetupOptions{Link: sim, AP: &network.SimAP{}, Secret: func() []byte { return secret }})
	defer setup.Close()
	routes := (&Network{Link: setup, Setup: setup}).routes()
	get := func(path string) request { return request{method: "GET", path: path, token: "owner-token"} }
	answer(t, do(t, routes, get("/api/v1/network/wifi/setup")), 403, nil) // not over TLS
	var ap SetupAccessPoint
	answer(t, do(t, routes, get("https://camera/api/v1/network/wifi/setup")), 200, &ap)
	want := network.SetupNetwork(secret)
	if ap.SSID != want.SSID || ap.Passphrase != want.Passphrase || ap.Open {
		t.Fatalf("before setup mode: %+v, want %v closed", ap, want)
	}
	if err := setup.Enter(t.Context(), "test"); err != nil {
		t.Fatal(err)
	}
	answer(t, do(t, routes, get("https://camera/api/v1/network/wifi/setup")), 200, &ap)
	if ap.SSID != want.SSID || !ap.Open {
		t.Fatalf("in setup mode: %+v", ap)
	}
	answer(t, do(t, (&Network{Link: sim}).routes(), get("https://camera/api/v1/network/wifi/setup")), 503, nil)
}
