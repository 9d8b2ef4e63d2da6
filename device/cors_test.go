package device

import (
	"net/http"
	"testing"
)

// TestConfiguredOriginsAndICEServers: cors.allowed_origins and
// live.ice_servers from the configuration reach the HTTPS API.
func TestConfiguredOriginsAndICEServers(t *testing.T) {
	d := running(t, func(c *Config) {
		c.CORS.AllowedOrigins = []string{"https://ha.example:8123"}
		c.Live.ICEServers = []ICEServerConfig{{URLs: []string{"turn:turn.example:3478"}, Username: "u", Credential: "p"}}
	})
	token := owner(t, d)
	do := func(token string, hdr map[string]string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("OPTIONS", "https://"+d.Addr().String()+"/api/v1/whep", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := testClient().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	want := `<turn:turn.example:3478>; rel="ice-server"; username="u"; credential="p"; credential-type="password"`
	if r := do(token, nil); r.StatusCode != http.StatusNoContent || r.Header.Get("Link") != want {
		t.Fatalf("OPTIONS with a credential: %d, Link %q", r.StatusCode, r.Header.Get("Link"))
	}
	if r := do("", nil); r.StatusCode != http.StatusNoContent || r.Header.Get("Link") != "" {
		t.Fatalf("OPTIONS without a credential: %d, Link %q", r.StatusCode, r.Header.Get("Link"))
	}
	preflight := map[string]string{"Origin": "https://ha.example:8123", "Access-Control-Request-Method": "POST"}
	if r := do("", preflight); r.StatusCode != http.StatusNoContent || r.Header.Get("Access-Control-Allow-Origin") != "https://ha.example:8123" {
		t.Fatalf("preflight from the allowed origin: %d %v", r.StatusCode, r.Header)
	}
	preflight["Origin"] = "https://other.example"
	if r := do("", preflight); r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("preflight from another origin: %v", r.Header)
	}
}
