package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/camd-project/camd/device/pairing"
)

// pairedWith writes a credentials file for the fake camera cam and
// returns its path.
func pairedWith(t *testing.T, cam *httptest.Server) string {
	t.Helper()
	fp := sha256.Sum256(cam.Certificate().Raw)
	path := filepath.Join(t.TempDir(), "credentials.json")
	s := &store{path: path, Default: "cam", Devices: map[string]*credential{
		"cam": {DeviceID: "cam", Addr: strings.TrimPrefix(cam.URL, "https://"), Fingerprint: hex.EncodeToString(fp[:]), Token: "t"},
	}}
	if err := s.save(); err != nil {
		t.Fatal(err)
	}
	return path
}

// camctlRun runs camctl with --store after the verb and its subcommand.
func camctlRun(storePath string, args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	args = append(append(args[:2:2], "--store", storePath), args[2:]...)
	code = run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestUsersInvitationsAndCancel: `camctl users invitations` reads the
// list as camd's pairing manager writes it, and `camctl users cancel ID`
// deletes one; the camera's refusal is printed.
func TestUsersInvitationsAndCancel(t *testing.T) {
	created := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	list := []pairing.Invitation{
		{ID: "0a1b2c3d4e5f6071", Role: pairing.Viewer, By: "u1", ByName: "Ana", Created: created, Expires: created.Add(24 * time.Hour), Access: 2 * time.Hour},
		{ID: "8899aabbccddeeff", Role: pairing.Owner, By: "u2", Created: created, Expires: created.Add(7 * 24 * time.Hour)},
	}
	deleted := make(chan string, 4)
	cam := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer t" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		switch {
		case r.Method == "GET" && r.URL.Path == "/api/v1/users/invitations":
			json.NewEncoder(w).Encode(list)
		case r.Method == "DELETE" && r.URL.Path == "/api/v1/users/invitations/0a1b2c3d4e5f6071":
			deleted <- r.URL.Path
			w.WriteHeader(http.StatusNoContent)
		case r.Method == "DELETE":
			w.WriteHeader(http.StatusNotFound)
			json.NewEncoder(w).Encode(map[string]string{"error": "pairing: no such invitation"})
		default:
			w.WriteHeader(http.StatusMethodNotAllowed)
		}
	}))
	defer cam.Close()
	storePath := pairedWith(t, cam)

	code, out, errOut := camctlRun(storePath, "users", "invitations")
	if code != 0 {
		t.Fatalf("invitations: %d %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || strings.Join(strings.Fields(lines[0]), " ") != "ID ROLE BY CREATED EXPIRES ACCESS" {
		t.Fatalf("invitations table:\n%s", out)
	}
	local := func(tm time.Time) string { return tm.Local().Format(time.DateTime) }
	for i, want := range [][]string{
		{"0a1b2c3d4e5f6071", "viewer", "Ana (u1)", local(created), local(created.Add(24 * time.Hour)), "2h0m0s"},
		{"8899aabbccddeeff", "owner", "u2", local(created), local(created.Add(7 * 24 * time.Hour)), "until revoked"},
	} {
		for _, w := range want {
			if !strings.Contains(lines[i+1], w) {
				t.Errorf("row %d %q lacks %q", i, lines[i+1], w)
			}
		}
	}

	code, out, _ = camctlRun(storePath, "users", "invitations", "--json")
	var back []pairing.Invitation
	if err := json.Unmarshal([]byte(out), &back); code != 0 || err != nil || len(back) != 2 || back[0] != list[0] || back[1] != list[1] {
		t.Fatalf("invitations --json: %d %v\n%s", code, err, out)
	}

	code, out, errOut = camctlRun(storePath, "users", "cancel", "0a1b2c3d4e5f6071")
	if code != 0 || !strings.Contains(out, "0a1b2c3d4e5f6071 cancelled") || len(deleted) != 1 {
		t.Fatalf("cancel: %d %q %q, %d deletes", code, out, errOut, len(deleted))
	}
	code, _, errOut = camctlRun(storePath, "users", "cancel", "ffff")
	if code != 1 || !strings.Contains(errOut, "404") || !strings.Contains(errOut, "no such invitation") {
		t.Fatalf("cancelling an unknown invitation: %d %q", code, errOut)
	}
	if code, _, _ := camctlRun(storePath, "users", "cancel"); code != 2 {
		t.Fatalf("cancel without an ID: %d", code)
	}
}

// TestUsersKeys: `camctl users keys add --for NAME` prints the key's
// secret once, in every form a client takes; list shows no secret;
// revoke deletes. Flags may come before or after the verb.
func TestUsersKeys(t *testing.T) {
	created := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	var asked map[string]string
	revoked := make(chan string, 1)
	cam := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == "POST" && r.URL.Path == "/api/v1/keys":
			json.NewDecoder(r.Body).Decode(&asked)
			w.WriteHeader(http.StatusCreated)
			json.NewEncoder(w).Encode(map[string]any{"id": "k1", "for": asked["for"], "scope": "view", "created": created,
				"secret": "s3cret", "token": "camdk1.k1.s3cret", "rtsp": "rtsp://k1:s3cret@cam:8554/live"})
		case r.Method == "GET" && r.URL.Path == "/api/v1/keys":
			json.NewEncoder(w).Encode([]pairing.Key{{ID: "k1", For: "frigate", Scope: "view", Created: created}})
		case r.Method == "DELETE" && r.URL.Path == "/api/v1/keys/k1":
			revoked <- "k1"
			w.WriteHeader(http.StatusNoContent)
		default:
			w.WriteHeader(http.StatusNotFound)
			json.NewEncoder(w).Encode(map[string]string{"error": "pairing: no such stream key"})
		}
	}))
	defer cam.Close()
	storePath := pairedWith(t, cam)
	code, out, errOut := camctlRun(storePath, "users", "keys", "add", "--for", "frigate")
	if code != 0 || asked["for"] != "frigate" || asked["scope"] != "view" {
		t.Fatalf("add: %d %q %v", code, errOut, asked)
	}
	for _, want := range []string{"k1", "s3cret", "camdk1.k1.s3cret", "rtsp://k1:s3cret@cam:8554/live"} {
		if !strings.Contains(out, want) {
			t.Errorf("add printed no %q:\n%s", want, out)
		}
	}
	if code, _, _ := camctlRun(storePath, "users", "keys", "add"); code != 2 {
		t.Fatalf("add without --for: %d", code)
	}
	code, out, _ = camctlRun(storePath, "users", "keys", "list")
	if code != 0 || !strings.Contains(out, "frigate") || !strings.Contains(out, "a device") || strings.Contains(out, "s3cret") {
		t.Fatalf("list: %d\n%s", code, out)
	}
	if code, out, errOut = camctlRun(storePath, "users", "keys", "revoke", "k1"); code != 0 || <-revoked != "k1" {
		t.Fatalf("revoke: %d %q %q", code, out, errOut)
	}
	if code, _, errOut = camctlRun(storePath, "users", "keys", "revoke", "nope"); code != 1 || !strings.Contains(errOut, "no such stream key") {
		t.Fatalf("revoke unknown: %d %q", code, errOut)
	}
}
